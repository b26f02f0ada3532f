// SandboxEnvironment.swift — the names and bounds of the policy sandbox's environment, which C
// builds in every fresh state (aero_sandbox_env.c: the allow-list, the wrappers, the library
// tables filled on first use); see docs/sandbox.md. No Lua text runs to set a sandbox up:
// the only Lua code of the host's in a sandbox is the element loops of table.insert/remove/move (host-compiled
// bytecode, loaded when a policy first uses `table`).

import CLuaShim

enum SandboxEnvironment {
    /// Refusal reasons the host reads: at most this many (validate_answer refuses more; the
    /// bounds of the sandbox are AERO_* in aero_lua.h).
    static let reasonsMax = Int(AERO_REASONS_MAX)

    /// Names the sandbox environment provides (check() reports reads of any other global);
    /// the same as allowed_base plus print, load, setmetatable, _G and the library tables in
    /// aero_sandbox_env.c.
    static let environmentNames: Set<String> = [
        "_G", "_VERSION", "assert", "error", "getmetatable", "ipairs", "load", "next", "pairs",
        "pcall", "print", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall",
        "coroutine", "math", "string", "table", "utf8",
    ]
}
