// LuaState.swift — one Lua 5.4 state with budgets, driven from Swift without ever letting a
// Lua error longjmp across a Swift frame (the rule is spelled out in aero_lua.h and
// docs/architecture.md). Swift here calls only: aero_state_new, aero_state_close (lua_close
// plus the state's arena), aero_load_text (protected by lua_load), aero_pcall (protected by
// lua_pcall), and stack reads that cannot raise (lua_type, lua_toboolean, lua_tointegerx,
// lua_tonumberx, aero_string_at, lua_settop, lua_gettop).
import CLuaShim

/// Limits charged to one Lua state. Every field is a hard bound.
public struct LuaBudget: Sendable, Equatable {
    /// VM instructions for one call (counted every `hookIntervalInstructions`).
    public var instructionsMax: Int64
    /// Bytes the state may hold at once.
    public var memoryBytesMax: Int
    /// CPU time of the running thread for one call: the last resort when the other budgets
    /// do not fire (slow C library calls). CPU, not wall, time so that a preempted thread on
    /// a loaded host is not refused for time it did not run; a sandbox never blocks (no I/O),
    /// so its wall time is its CPU time plus preemption.
    public var cpuTimeMsMax: UInt64
    /// How often the hook runs; smaller is more precise and slower.
    public var hookIntervalInstructions: Int32

    public init(
        instructionsMax: Int64 = 1_000_000,
        memoryBytesMax: Int = 8 << 20,
        cpuTimeMsMax: UInt64 = 250,
        hookIntervalInstructions: Int32 = 1_000
    ) {
        precondition(instructionsMax > 0 && memoryBytesMax > 0 && cpuTimeMsMax > 0)
        precondition(hookIntervalInstructions > 0 && Int64(hookIntervalInstructions) <= instructionsMax,
                     "the hook must fire at least once within the instruction budget")
        self.instructionsMax = instructionsMax
        self.memoryBytesMax = memoryBytesMax
        self.cpuTimeMsMax = cpuTimeMsMax
        self.hookIntervalInstructions = hookIntervalInstructions
    }
}

/// A Lua failure, as a Swift error. `line` is nil when Lua could not say.
public struct LuaError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case syntax, runtime, memory, instructionBudget, timeBudget, errorInHandler, stateCreation
    }
    public let kind: Kind
    public let chunkName: String
    public let line: Int?
    public let message: String

    public init(kind: Kind, chunkName: String, line: Int?, message: String) {
        self.kind = kind
        self.chunkName = chunkName
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(chunkName):\(line): \(message)" }
        return "\(chunkName): \(message)"
    }
}

/// A value read back from Lua. Tables and functions are not converted here.
public enum LuaValue: Equatable, Sendable {
    case `nil`
    case boolean(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case other(typeName: String)
}

/// One Lua state. Not thread-safe: use it from one task at a time, then drop it.
public final class LuaState {
    let L: OpaquePointer
    let budgetPointer: UnsafeMutablePointer<aero_budget>
    public let budget: LuaBudget

    public init(budget: LuaBudget = LuaBudget()) throws(LuaError) {
        self.budget = budget
        budgetPointer = .allocate(capacity: 1)
        budgetPointer.initialize(to: aero_budget())
        budgetPointer.pointee.memory_limit_bytes = budget.memoryBytesMax
        budgetPointer.pointee.instruction_limit = budget.instructionsMax
        budgetPointer.pointee.hook_interval = budget.hookIntervalInstructions
        aero_budget_reset(budgetPointer)
        guard let state = aero_state_new(budgetPointer) else {
            budgetPointer.deallocate()
            throw LuaError(kind: .stateCreation, chunkName: "", line: nil,
                           message: "cannot create a Lua state within \(budget.memoryBytesMax) bytes")
        }
        L = state
        aero_install_budget_hook(L)
    }

    deinit {
        aero_state_close(L, budgetPointer)
        budgetPointer.deinitialize(count: 1)
        budgetPointer.deallocate()
    }

    /// Opens base, coroutine, table, string, math and utf8 — never io, os, package or debug.
    /// A sandbox narrows these further before any untrusted code runs.
    public func openPureLibraries() throws(LuaError) {
        let status = aero_open_pure_libraries(L)
        if status != LUA_OK { throw popError(status: status, chunkName: "=libraries") }
    }

    /// Bytes the state holds now, and the most it ever held.
    public var memoryBytesUsed: Int { budgetPointer.pointee.memory_used_bytes }
    public var memoryBytesPeak: Int { budgetPointer.pointee.memory_peak_bytes }
    /// Instructions charged so far (in steps of the hook interval).
    public var instructionsUsed: Int64 { budgetPointer.pointee.instructions_used }

    /// Loads `chunk` as text (never bytecode) and runs it with fresh per-call budgets,
    /// returning its first result. Lua errors come back as `LuaError`.
    public func evaluate(_ chunk: String, chunkName: String) throws(LuaError) -> LuaValue {
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        try load(chunk, chunkName: chunkName)
        try call(argumentCount: 0, resultCount: 1, chunkName: chunkName)
        return value(at: -1)
    }

    /// Pushes the compiled chunk. Syntax and memory errors are thrown, the stack unchanged.
    public func load(_ chunk: String, chunkName: String) throws(LuaError) {
        var source = chunk
        let status = source.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                aero_load_text(L, chars.baseAddress, chars.count, "=" + chunkName)
            }
        }
        if status != LUA_OK {
            throw popError(status: status, chunkName: chunkName)
        }
    }

    /// Calls the function below `argumentCount` arguments on the stack, under the budgets.
    public func call(argumentCount: Int32, resultCount: Int32, chunkName: String) throws(LuaError) {
        startCallBudget()
        let status = aero_pcall(L, argumentCount, resultCount)
        if status != LUA_OK {
            throw popError(status: status, chunkName: chunkName)
        }
        if let tripped = trippedBudget() {
            lua_settop(L, lua_gettop(L) - (resultCount >= 0 ? resultCount : 0))
            throw LuaError(kind: tripped.kind, chunkName: chunkName, line: nil, message: tripped.message)
        }
    }

    /// Reads the value at `index` without conversion and without metamethods.
    public func value(at index: Int32) -> LuaValue {
        switch lua_type(L, index) {
        case LUA_TNIL, LUA_TNONE: return .nil
        case LUA_TBOOLEAN: return .boolean(lua_toboolean(L, index) != 0)
        case LUA_TNUMBER:
            if lua_isinteger(L, index) != 0 { return .integer(lua_tointegerx(L, index, nil)) }
            return .number(lua_tonumberx(L, index, nil))
        case LUA_TSTRING: return .string(string(at: index) ?? "")
        default: return .other(typeName: String(cString: lua_typename(L, lua_type(L, index))))
        }
    }

    /// The string at `index` when the value is a string; nil otherwise (numbers are not
    /// converted, because conversion allocates and may raise).
    public func string(at index: Int32) -> String? {
        var length = 0
        guard let chars = aero_string_at(L, index, &length) else { return nil }
        let bytes = UnsafeRawBufferPointer(start: chars, count: length)
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Budgets and errors

    private func startCallBudget() {
        let pointer = budgetPointer
        // A tripped hook fires on every instruction; restore the normal interval first.
        aero_install_budget_hook(L)
        pointer.pointee.instructions_used = 0
        pointer.pointee.instructions_exceeded = 0
        aero_start_time_budget(pointer, budget.cpuTimeMsMax)
        pointer.pointee.where_line = -1
        withUnsafeMutableBytes(of: &pointer.pointee.where_source) { $0[0] = 0 }
    }

    private func trippedBudget() -> (kind: LuaError.Kind, message: String)? {
        // A call that returned over budget fails even if no hook fired during it.
        _ = aero_budget_recheck(budgetPointer)
        let b = budgetPointer.pointee
        if b.instructions_exceeded != 0 {
            return (.instructionBudget, "instruction budget of \(budget.instructionsMax) exceeded")
        }
        if b.time_exceeded != 0 {
            return (.timeBudget, "time budget of \(budget.cpuTimeMsMax) ms exceeded")
        }
        if b.memory_exceeded != 0 {
            return (.memory, "memory budget of \(budget.memoryBytesMax) bytes exceeded")
        }
        return nil
    }

    private func popError(status: Int32, chunkName: String) -> LuaError {
        defer { lua_settop(L, -2) }
        let where_ = whereRaised()
        let rawMessage = string(at: -1)
            ?? "error object is a \(String(cString: lua_typename(L, lua_type(L, -1)))) value"
        if let tripped = trippedBudget() {
            return LuaError(kind: tripped.kind, chunkName: where_?.source ?? chunkName,
                            line: where_?.line, message: tripped.message)
        }
        let kind: LuaError.Kind
        switch status {
        case LUA_ERRSYNTAX: kind = .syntax
        case LUA_ERRMEM: kind = .memory
        case LUA_ERRERR: kind = .errorInHandler
        default: kind = .runtime
        }
        // Lua prefixes "source:line: " to string errors; keep the bare message when it does.
        var message = rawMessage
        var line = where_?.line
        var source = where_?.source ?? chunkName
        if let parsed = Self.splitLocation(rawMessage) {
            source = parsed.source
            line = parsed.line
            message = parsed.message
        }
        return LuaError(kind: kind, chunkName: source, line: line, message: message)
    }

    private func whereRaised() -> (source: String, line: Int)? {
        let b = budgetPointer.pointee
        guard b.where_line >= 0 else { return nil }
        let source = withUnsafeBytes(of: b.where_source) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return (source, Int(b.where_line))
    }

    /// Splits "source:123: message" into its parts.
    static func splitLocation(_ text: String) -> (source: String, line: Int, message: String)? {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let line = Int(parts[1]), line >= 0 else { return nil }
        let message = parts[2].hasPrefix(" ") ? parts[2].dropFirst() : parts[2]
        return (String(parts[0]), line, String(message))
    }
}
