// SandboxPrelude.swift — the names and bounds of the policy sandbox's environment, which C
// builds in every fresh state (aero_sandbox.c: the allow-list, the wrappers, the library
// tables filled on first use); see docs/sandbox.md. No Lua text runs to set a sandbox up:
// the only Lua code of the host's in a sandbox is table.insert/remove/move (host-compiled
// bytecode, loaded when a policy first uses `table`).

import CLuaShim

enum SandboxPrelude {
    /// The chunk name of the host's own Lua code in a sandbox.
    static let chunkName = AERO_SANDBOX_CHUNK_NAME

    /// Refusal reasons: at most this many, each at most `reasonBytesMax` bytes.
    static let reasonsMax = Int(AERO_REASONS_MAX)
    static let reasonBytesMax = Int(AERO_REASON_BYTES_MAX)
    /// string.rep: at most this many repetitions and this many result bytes per call.
    static let repCountMax = Int(AERO_REP_COUNT_MAX)
    static let repBytesMax = Int(AERO_REP_BYTES_MAX)
    /// load(): at most this many bytes of Lua text per chunk.
    static let loadBytesMax = Int(AERO_LOAD_BYTES_MAX)

    /// Names the sandbox environment provides (check() reports reads of any other global);
    /// the same as allowed_base plus print, load, setmetatable, _G and the library tables in
    /// aero_sandbox.c.
    static let environmentNames: Set<String> = [
        "_G", "_VERSION", "assert", "error", "getmetatable", "ipairs", "load", "next", "pairs",
        "pcall", "print", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall",
        "coroutine", "math", "string", "table", "utf8",
    ]
}
