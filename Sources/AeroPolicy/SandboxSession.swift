// SandboxSession.swift — one fresh Lua state running one policy once (see the design notes
// in PolicySandbox.swift). Used by one thread, then dropped; deinit closes the state.
import AeroCore
import CLuaShim

final class SandboxSession {
    private let lua: LuaState
    private let policy: PolicySource
    private let budget: LuaBudget
    /// The policy's host-compiled bytecode (nil: the text does not compile).
    private let bytecode: [UInt8]?
    private var L: OpaquePointer { lua.L }
    private var counters: UnsafeMutablePointer<aero_budget> { lua.budgetPointer }
    /// aerodb-policy only (PolicyTooling.swift): nil in every other sandbox.
    private let tooling: ToolingRun?

    // Stack slots after prepare(): validate, env; then facts and the chunk.
    private static let validateSlot: Int32 = 1
    private static let envSlot: Int32 = 2

    init(policy: PolicySource, budget: LuaBudget, tooling: PolicyTooling? = nil) throws(LuaError) {
        self.policy = policy
        self.budget = budget
        // One-time, process-wide work (and compiling a policy seen for the first time) is done
        // before this run's deadline starts.
        _ = aero_sandbox_capture_libraries()
        bytecode = CompiledPolicies.shared.bytecode(for: policy)
        self.tooling = tooling.map { [bytecode] in ToolingRun(tooling: $0, policy: policy, bytecode: bytecode,
                                                              memoryBytesMax: budget.memoryBytesMax) }
        var setupBudget = budget
        setupBudget.memoryBytesMax = PolicySandbox.setupBytesMax
        lua = try LuaState(budget: setupBudget)
        // Setup is host code and allocates little garbage: no collection until the policy
        // runs (startPolicyBudget restarts the collector).
        aero_gc_stop(lua.L)
        let b = lua.budgetPointer
        // No finalizer can exist in a sandbox (setmetatable refuses __gc) and no
        // to-be-closed variable is pending once its calls have returned: its memory is
        // released in bulk when the session ends, without lua_close (aero_lua.c).
        b.pointee.release_in_bulk = 1
        b.pointee.printed_lines_max = Int32(PolicySandbox.printedLinesMax)
        b.pointee.printed_bytes_max = PolicySandbox.printedBytesMax
        b.pointee.printed_line_bytes_max = PolicySandbox.printedLineBytesMax
        aero_start_time_budget(b, budget.cpuTimeMsMax)
    }

    // MARK: - Run

    func run(facts: PolicyFacts) -> PolicyRun {
        tooling?.attach(to: lua)
        var outcome = decide(facts: facts)
        tooling?.finish()
        // Fail closed over the whole evaluation: whatever the steps answered, a run that is
        // over a budget now (work inside a C call no hook saw, the answer's validation) is that
        // budget's failure, never an answer.
        if case .failed = outcome {} else if let tripped = trippedBudget() { outcome = tripped }
        return PolicyRun(name: policy.name, outcome: outcome, instructionsUsed: counters.pointee.instructions_used,
                         memoryBytesPeak: counters.pointee.memory_peak_bytes, printed: printedLines(),
                         printedTruncated: counters.pointee.printed_truncated != 0)
    }

    private func decide(facts: PolicyFacts) -> PolicyOutcome {
        if let failure = prepare() { return failure }
        let tape: [UInt8]
        switch facts.tape {
        case .success(let bytes):
            tape = bytes
        case .failure(let error):
            return .failed(kind: .load, message: "\(policy.path): facts cannot be given to Lua (\(error == .tooDeep ? "nested deeper than \(FactsTape.depthMax)" : "too large"))")
        }
        // The state reads the tape in place while the policy runs (facts are built lazily):
        // everything that runs Lua code stays inside this closure.
        return tape.withUnsafeBufferPointer { buffer in
            defer { aero_sandbox_forget_facts(L) }
            return decide(tape: buffer)
        }
    }

    private func decide(tape: UnsafeBufferPointer<UInt8>) -> PolicyOutcome {
        let status = aero_sandbox_push_facts(L, tape.baseAddress, tape.count)
        if status != LUA_OK { return failure(status: status, phase: .load) }
        if let tooling {
            tooling.root = lua_topointer(L, -1)
            tooling.aliases = ToolingRun.aliases(ofTape: tape)
        }
        if let failure = loadPolicy() { return failure }
        startPolicyBudget()
        // Top level: returns the policy function.
        var callStatus = aero_pcall(L, 0, 1)
        if callStatus != LUA_OK { return failure(status: callStatus, phase: .load) }
        if let tripped = trippedBudget() { return tripped }
        guard lua_type(L, -1) == LUA_TFUNCTION else {
            return .failed(kind: .load, message: "\(policy.path): the file returned \(typeName(at: -1)), not a function")
        }
        // validate(fn, facts)
        let function = lua_gettop(L)
        guard lua_checkstack(L, 3) != 0 else { return .failed(kind: .memoryBudget, message: "\(policy.path): no stack space") }
        lua_pushvalue(L, Self.validateSlot)
        lua_pushvalue(L, function)
        lua_pushvalue(L, function - 1)
        callStatus = aero_pcall(L, 2, 2)
        if callStatus != LUA_OK { return failure(status: callStatus, phase: .runtime) }
        if let tripped = trippedBudget() { return tripped }
        return answer()
    }

    /// Reads validate()'s two results: a code and a payload it built itself.
    private func answer() -> PolicyOutcome {
        var isInteger: Int32 = 0
        let code = lua_tointegerx(L, -2, &isInteger)
        // Fail closed on a host bug: only an integer code is an answer (a string would read as 0).
        precondition(isInteger != 0 && lua_type(L, -2) == LUA_TNUMBER, "the sandbox's validate answered no code")
        switch code {
        case 0:
            return .noObjection
        case 1:
            guard lua_type(L, -1) == LUA_TTABLE, lua_checkstack(L, 1) != 0 else { break }
            var reasons: [String] = []
            var index: Int64 = 1
            while index <= Int64(SandboxEnvironment.reasonsMax), lua_rawgeti(L, -1, index) == LUA_TSTRING {
                reasons.append(lua.string(at: -1) ?? "")
                lua_settop(L, -2)
                index += 1
            }
            lua_settop(L, -2)
            if !reasons.isEmpty { return .refused(reasons) }
        case 2:
            if let message = lua.string(at: -1) {
                return .failed(kind: .wrongReturnType, message: "\(policy.path): the policy function \(message)")
            }
        default:
            break
        }
        preconditionFailure("the sandbox validate answered code \(code) with a \(typeName(at: -1))")
    }

    // MARK: - Check

    func check() -> [PolicyDiagnostic] {
        if let failure = prepare() { return [diagnostic(failure)] }
        if let failure = loadPolicy() { return [diagnostic(failure)] }
        let chunk = lua_gettop(L)
        // The globals the code reads, from its own bytecode, before running anything.
        var bytes = aero_bytes()
        defer { aero_bytes_free(&bytes) }
        let dumpStatus = aero_dump_top(L, &bytes, 0)
        if dumpStatus != LUA_OK { return [diagnostic(failure(status: dumpStatus, phase: .load))] }
        let access = ChunkGlobals.parse(UnsafeRawBufferPointer(start: bytes.data, count: bytes.length))
        lua_settop(L, chunk)

        startPolicyBudget()
        let status = aero_pcall(L, 0, 1)
        if status != LUA_OK { return [diagnostic(failure(status: status, phase: .load))] }
        if let tripped = trippedBudget() { return [diagnostic(tripped)] }
        var diagnostics: [PolicyDiagnostic] = []
        if lua_type(L, -1) != LUA_TFUNCTION {
            diagnostics.append(PolicyDiagnostic(path: policy.path, line: nil,
                                                message: "the file returned \(typeName(at: -1)), not a function"))
        }
        guard let access else {
            diagnostics.append(PolicyDiagnostic(path: policy.path, line: nil,
                                                message: "cannot read the compiled chunk to list its globals"))
            return diagnostics
        }
        // Provided: the sandbox names, whatever the top level defined, and any global the
        // code assigns somewhere (defined when that code runs).
        let defined = SandboxEnvironment.environmentNames.union(environmentKeys()).union(access.writes.map(\.name))
        var reported: Set<String> = []
        for read in access.reads where !defined.contains(read.name) && !reported.contains(read.name) {
            reported.insert(read.name)
            diagnostics.append(PolicyDiagnostic(path: policy.path, line: read.line,
                                                message: "reads global '\(read.name)', which the sandbox does not provide"))
        }
        return diagnostics
    }

    /// String keys of the environment table (raw reads: lua_next on a plain table).
    private func environmentKeys() -> [String] {
        var keys: [String] = []
        guard lua_checkstack(L, 3) != 0 else { return keys }
        lua_pushnil(L)
        while lua_next(L, Self.envSlot) != 0 {
            lua_settop(L, -2)
            if let key = lua.string(at: -1) { keys.append(key) }
        }
        return keys
    }

    private func diagnostic(_ outcome: PolicyOutcome) -> PolicyDiagnostic {
        guard case .failed(_, let message) = outcome else { preconditionFailure("not a failure: \(outcome)") }
        // Messages are "path:line: text" or "path: text".
        let prefix = policy.path + ":"
        if message.hasPrefix(prefix) {
            let rest = message.dropFirst(prefix.count)
            if let colon = rest.firstIndex(of: ":"), let line = Int(rest[..<colon]) {
                return PolicyDiagnostic(path: policy.path, line: line,
                                        message: String(rest[rest.index(after: colon)...].drop { $0 == " " }))
            }
            return PolicyDiagnostic(path: policy.path, line: nil, message: String(rest.drop { $0 == " " }))
        }
        return PolicyDiagnostic(path: policy.path, line: nil, message: message)
    }

    // MARK: - Steps

    /// Builds the environment (in C): leaves [validate, env] on the stack.
    private func prepare() -> PolicyOutcome? {
        let status = aero_sandbox_prepare(L)
        if status != LUA_OK { return failure(status: status, phase: .load) }
        return nil
    }

    /// Loads the policy and gives it the sandbox environment. The text is compiled (text
    /// mode only) once per process in a scratch state and dumped; every run loads that dump
    /// (CompiledPolicies), so runs of one policy are identical whether or not it was cached.
    /// A text that does not compile is loaded as text here, to report its syntax error.
    private func loadPolicy() -> PolicyOutcome? {
        let status: Int32
        if let bytecode {
            status = bytecode.withUnsafeBufferPointer {
                aero_load_host_binary(L, $0.baseAddress, $0.count, "=" + policy.name)
            }
        } else {
            var text = policy.text
            status = text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    aero_load_text(L, chars.baseAddress, chars.count, "=" + policy.name)
                }
            }
        }
        if status != LUA_OK { return failure(status: status, phase: .load) }
        guard lua_checkstack(L, 1) != 0 else { return .failed(kind: .memoryBudget, message: "\(policy.path): no stack space") }
        lua_pushvalue(L, Self.envSlot)
        // A main chunk's first upvalue is _ENV; setting it cannot raise.
        if lua_setupvalue(L, -2, 1) == nil { lua_settop(L, -2) }
        return nil
    }

    /// From here on the policy's own budgets count: memory on top of what setup used, and
    /// instructions from zero. The CPU-time budget covers the whole run.
    private func startPolicyBudget() {
        let b = counters
        aero_gc_restart(L)
        b.pointee.memory_limit_bytes = b.pointee.memory_used_bytes + budget.memoryBytesMax
        aero_install_budget_hook(L)  // resets the hook's count
        b.pointee.instructions_used = 0
        b.pointee.instruction_limit = budget.instructionsMax
    }

    /// Re-checks every budget against its clock and counters (aero_budget_recheck), so a call
    /// that returned over budget is refused even if no hook fired during it; then names the
    /// first budget exceeded.
    private func trippedBudget() -> PolicyOutcome? {
        _ = aero_budget_recheck(counters)
        let b = counters.pointee
        let location = whereRaised().map { "\(policy.path):\($0)" } ?? policy.path
        if b.instructions_exceeded != 0 {
            return .failed(kind: .instructionBudget, message: "\(location): instruction budget of \(budget.instructionsMax) exceeded")
        }
        if b.time_exceeded != 0 {
            return .failed(kind: .timeBudget, message: "\(location): time budget of \(budget.cpuTimeMsMax) ms exceeded")
        }
        if b.memory_exceeded != 0 {
            return .failed(kind: .memoryBudget, message: "\(location): memory budget of \(budget.memoryBytesMax) bytes exceeded")
        }
        return nil
    }

    private enum Phase { case load, runtime }

    /// The failure for a non-OK status; pops the error object. Budgets take precedence,
    /// then the error message (strings only; other error objects are named by type).
    private func failure(status: Int32, phase: Phase) -> PolicyOutcome {
        defer { lua_settop(L, -2) }
        if let tripped = trippedBudget() { return tripped }
        if status == LUA_ERRMEM {
            return .failed(kind: .memoryBudget, message: "\(policy.path): out of memory")
        }
        let kind: PolicyFailureKind = phase == .load ? .load : .runtime
        guard var message = lua.string(at: -1) else {
            let location = whereRaised().map { "\(policy.path):\($0)" } ?? policy.path
            return .failed(kind: kind, message: "\(location): error object is \(typeName(at: -1))")
        }
        if message.utf8.count > PolicySandbox.messageBytesMax {
            message = String(decoding: message.utf8.prefix(PolicySandbox.messageBytesMax), as: UTF8.self) + "…"
        }
        if let parsed = LuaState.splitLocation(message) {
            if parsed.source == policy.name {
                return .failed(kind: kind, message: "\(policy.path):\(parsed.line): \(parsed.message)")
            }
            if parsed.source.hasPrefix("aerodb-"), let line = whereRaised() {
                return .failed(kind: kind, message: "\(policy.path):\(line): \(parsed.message)")
            }
            return .failed(kind: kind, message: "\(policy.path): \(message)")
        }
        let location = whereRaised().map { "\(policy.path):\($0)" } ?? policy.path
        return .failed(kind: kind, message: "\(location): \(message)")
    }

    /// The policy line recorded by the message handler, if the error came from the policy.
    private func whereRaised() -> Int? {
        let b = counters.pointee
        guard b.where_line >= 0 else { return nil }
        let source = withUnsafeBytes(of: b.where_source) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return source == policy.name ? Int(b.where_line) : nil
    }

    private func typeName(at index: Int32) -> String {
        let type = lua_type(L, index)
        if type == LUA_TNIL || type == LUA_TNONE { return "nil" }
        let name = String(cString: lua_typename(L, type))
        return (name.first.map { "aeiou".contains($0) } ?? false ? "an " : "a ") + name + " value"
    }

    private func printedLines() -> [String] {
        let count = Int(counters.pointee.printed_lines)
        guard count > 0, lua_checkstack(L, 2) != 0 else { return [] }
        let top = lua_gettop(L)
        defer { lua_settop(L, top) }
        aero_sandbox_push_printed(L)
        guard lua_type(L, -1) == LUA_TTABLE else { return [] }
        var lines: [String] = []
        for index in 1...count {
            if lua_rawgeti(L, top + 1, Int64(index)) == LUA_TSTRING, let line = lua.string(at: -1) {
                lines.append(line)
            }
            lua_settop(L, top + 1)
        }
        return lines
    }
}
