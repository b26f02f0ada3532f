// CompiledPolicies.swift — a bounded, process-wide cache of policy bytecode. The host
// compiles a policy's text (text mode) once in a scratch state, dumps it with lua_dump, and
// every sandbox loads that dump instead of parsing again. Only bytes the host itself dumped
// are ever loaded as binary; a policy can never supply bytecode (its load() is text-only).
import AeroCore
import CLuaShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class CompiledPolicies: @unchecked Sendable {
    static let shared = CompiledPolicies()
    /// Entries kept; when full the cache is emptied (policy sets are small and stable).
    static let entriesMax = 256
    /// Memory for compiling one policy in the scratch state.
    static let compileBytesMax = 64 << 20

    // Guarded by `mutex`; @unchecked Sendable is sound because every access takes it.
    // Keyed by name (cheap to hash); the text is compared on lookup, so an edited policy
    // with the same name is compiled again (hashing whole texts on every run was 6% of a
    // decision's instructions).
    private var entries: [String: (text: String, bytecode: [UInt8])] = [:]
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    private init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    /// The policy's bytecode, compiling it on first use; nil when the text does not compile
    /// (the caller then loads the text itself to report the syntax error).
    func bytecode(for policy: PolicySource) -> [UInt8]? {
        pthread_mutex_lock(mutex)
        let cached = entries[policy.name]
        pthread_mutex_unlock(mutex)
        if let cached, cached.text == policy.text { return cached.bytecode }
        guard let compiled = Self.compile(policy) else { return nil }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if entries.count >= Self.entriesMax { entries.removeAll(keepingCapacity: true) }
        entries[policy.name] = (policy.text, compiled)
        return compiled
    }

    private static func compile(_ policy: PolicySource) -> [UInt8]? {
        guard let lua = try? LuaState(budget: LuaBudget(memoryBytesMax: compileBytesMax)) else { return nil }
        do {
            try lua.load(policy.text, chunkName: policy.name)
        } catch {
            return nil
        }
        var bytes = aero_bytes()
        defer { aero_bytes_free(&bytes) }
        guard aero_dump_top(lua.L, &bytes, 0) == LUA_OK, bytes.failed == 0 else { return nil }
        return Array(UnsafeRawBufferPointer(start: bytes.data, count: bytes.length))
    }
}

/// The last facts document encoded by `PolicySandbox.run(_:facts: JSONValue)`: the policies
/// of one decision are run one after another with the same document, which is then encoded
/// once instead of once per policy. Equal documents give equal tapes, so reuse is exact.
final class LastFacts: @unchecked Sendable {
    static let shared = LastFacts()

    // Guarded by `mutex`; @unchecked Sendable is sound because every access takes it.
    private var last: (json: JSONValue, facts: PolicyFacts)?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    private init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func encoded(_ json: JSONValue) -> PolicyFacts {
        pthread_mutex_lock(mutex)
        let cached = last
        pthread_mutex_unlock(mutex)
        if let cached, cached.json == json { return cached.facts }
        let facts = PolicyFacts(json)
        pthread_mutex_lock(mutex)
        last = (json, facts)
        pthread_mutex_unlock(mutex)
        return facts
    }
}
