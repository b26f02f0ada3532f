import AeroCore
import Testing
@testable import AeroPolicy

/// Hostile policies: each must end in a failure (a refusal) that names the cause, bounded by
/// the budgets, and leave the host able to run the next decision normally.
@Suite struct HostileInputTests {
    typealias F = SandboxFixtures

    /// A benign policy run right after a hostile one sees the usual answer.
    private func expectNextDecisionUnaffected() {
        let text = "return function(f) if f.candidate.id ~= 'b' or string.rep('a', 2) ~= 'aa' or x ~= nil then return 'wrong' end end"
        #expect(F.outcome(text) == .noObjection)
    }

    private func expectFailure(_ text: String, _ kind: PolicyFailureKind, containing fragment: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        let outcome = F.outcome(text)
        guard case .failed(let actualKind, let message) = outcome else {
            Issue.record("expected a \(kind) failure, got \(outcome)", sourceLocation: sourceLocation)
            return
        }
        #expect(actualKind == kind, "\(message)", sourceLocation: sourceLocation)
        #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
        #expect(message.hasPrefix("policies/p.lua"), "\(message)", sourceLocation: sourceLocation)
        expectNextDecisionUnaffected()
    }

    // MARK: Infinite loops

    @Test(arguments: [
        "return function() while true do end end",
        "return function() local function f() return f() end return f() end",
        "return function() coroutine.wrap(function() while true do end end)() end",
        "return function() while true do coroutine.resume(coroutine.create(function() while true do end end)) end end",
        "return function() while true do pcall(function() while true do end end) end end",
        "return function() local co = coroutine.wrap(function() while true do coroutine.yield() end end) while true do co() end end",
        "return function() xpcall(function() error('x') end, function() while true do end end) end",
        "return function() return load(function() while true do end end) end",
        "return function() return tostring(setmetatable({}, {__tostring = function() while true do end end})) end",
        "return function() local t = setmetatable({}, {__len = function() return math.maxinteger - 1 end}) table.insert(t, 1, 'x') end",
        "return function() table.move({}, 1, math.maxinteger // 2, 2) end",
        "return function() local t = setmetatable({}, {__len = function() return math.maxinteger - 1 end}) table.remove(t, 1) end",
        // After a hook-raised error Lua runs these with hooks off; the sandbox must not run them.
        "return function() xpcall(function() while true do end end, function() while true do end end) end",
        "return function() local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() while true do end end}) while true do end end) coroutine.resume(co) coroutine.close(co) end",
        "return function() coroutine.wrap(function() local x <close> = setmetatable({}, {__close = function() while true do end end}) while true do end end)() end",
    ])
    func infiniteLoopsStopAtTheInstructionBudget(text: String) {
        expectFailure(text, .instructionBudget, containing: "instruction budget of 1000000 exceeded")
    }

    @Test func anInfiniteLoopAtLoadTimeIsALoadFailureOfTheBudget() {
        let run = F.run("local n = 0\nwhile true do n = n + 1 end\nreturn function() end")
        #expect(run.outcome == .failed(kind: .instructionBudget, message: "policies/p.lua:2: instruction budget of 1000000 exceeded"))
        #expect(run.instructionsUsed > 1_000_000)
        expectNextDecisionUnaffected()
    }

    @Test func theCPUTimeBudgetIsTheLastResort() {
        let budget = LuaBudget(instructionsMax: Int64.max, memoryBytesMax: 16 << 20, cpuTimeMsMax: 20,
                               hookIntervalInstructions: 1_000)
        let run = F.run("return function() while true do end end", budget: budget)
        #expect(run.outcome.failureKind == .timeBudget)
        expectNextDecisionUnaffected()
    }

    // MARK: Memory

    @Test(arguments: [
        "return function() local s = string.rep('x', 1 << 19) local t = {} for i = 1, 1e9 do t[i] = s .. i end end",
        "return function() local filler = {string.byte(string.rep('x', 4096), 1, -1)} local t = {} for i = 1, 1e9 do t[i] = {table.unpack(filler)} end end",
        "return function() local s = string.rep('x', 1 << 20) local t = {} for i = 1, 100 do t[i] = s .. i end end",
        "return function() local s = 'x' while true do s = s .. s end end",
        "return function() local p = string.rep(string.rep('p', 1000), 100) local parts = {} for i = 1, 1e9 do parts[i] = p .. i end return table.concat(parts) end",
        "return function() pcall(function() local s = 'x' while true do s = s .. s end end) end",
        "return function() for i = 1, 100 do pcall(function() local s = string.rep('x', 1 << 19) local t = {} for j = 1, 1e9 do t[j] = s .. j end end) end end",
        "local hoard = {} for i = 1, 64 do hoard[i] = string.rep('y', 1 << 20) .. i end\nreturn function() end",
    ])
    func memoryBombsStopAtTheMemoryBudget(text: String) {
        let run = F.run(text)
        #expect(run.outcome.failureKind == .memoryBudget, "\(run.outcome)")
        #expect(run.memoryBytesPeak <= PolicySandbox.defaultBudget.memoryBytesMax + 2 << 20)
        expectNextDecisionUnaffected()
    }

    // MARK: Patterns (they run in C, where the hook never fires)

    @Test(arguments: [
        ("return function() return string.rep('a', 5000):find(string.rep('a*', 8) .. 'b') end", "pattern too complex"),
        ("return function() return ('a'):rep(3000):match('a-a-a-b') end", "pattern too complex"),
        ("return function() return ('a'):rep(2000):gsub('(a*)*b', '') end", "pattern too complex"),
        ("return function() for _ in ('a'):rep(3000):gmatch('a*a*b') do end end", "pattern too complex"),
        ("return function() return ('a'):rep(60000):find(('a'):rep(30) .. 'b$') end", "pattern too complex"),
        ("return function() return ('a'):rep(100000):find('a') end", "subject of 100000 bytes"),
        ("return function() return ('x'):rep(40):match(('x?'):rep(40) .. ('x'):rep(40)) end", "pattern too complex"),
        ("return function() return string.match('abc', ('x'):rep(300)) end", "pattern of 300 bytes"),
        ("return function() local m = string.match local s = ('a'):rep(5000) return m(s, '(.-)(.-)(.-)b') end", "pattern too complex"),
    ])
    func catastrophicPatternsAreRefused(text: String, fragment: String) {
        expectFailure(text, .runtime, containing: fragment)
    }

    @Test(arguments: [
        ("return function() return string.rep('', math.maxinteger) end", "repetitions"),
        ("return function() return (''):rep(1 << 40) end", "repetitions"),
        ("return function() local s = string.rep('xx', 1 << 20) return s end", "result larger than"),
        ("return function() return string.rep('', 1 << 20, string.rep('s', 2)) end", "result larger than"),
        ("return function() return string.rep(12345, 1 << 18) end", "result larger than"),
    ])
    func stringRepIsBounded(text: String, fragment: String) {
        expectFailure(text, .runtime, containing: fragment)
    }

    @Test func ordinaryPatternsWork() {
        let text = """
        return function(f)
          local y, m, d = f.captured_at:match('^(%d+)%-(%d+)%-(%d+)')
          local zone = f.candidate.labels.zone:gsub('^eu%-', '')
          local words = {}
          for w in ('ops-oncall team'):gmatch('%a+') do words[#words + 1] = w end
          return table.concat({y, m, d, zone, tostring(('abc'):find('b', 1, true)), table.concat(words, '/')}, ' ')
        end
        """
        #expect(F.outcome(text) == .refused(["2026 11 26 1b 2 ops/oncall/team"]))
    }

    // MARK: Reaching outside

    @Test(arguments: [
        ("return function() return io.open('/etc/passwd') end", "global 'io'"),
        ("return function() return os.exit(1) end", "global 'os'"),
        ("return function() return require('os') end", "global 'require'"),
        ("return function() return debug.getinfo(1) end", "global 'debug'"),
        ("return function() return package.loaded end", "global 'package'"),
        ("return function() return dofile('/etc/passwd') end", "global 'dofile'"),
        ("return function() return loadfile('/etc/passwd') end", "global 'loadfile'"),
        ("return function() return rawget(_G, 'x') end", "global 'rawget'"),
        ("return function() rawset(_G, 'x', 1) end", "global 'rawset'"),
        ("return function() return rawequal(1, 1) end", "global 'rawequal'"),
        ("return function() return collectgarbage('count') end", "global 'collectgarbage'"),
        ("return function() return string.dump(function() end) end", "field 'dump'"),
        ("return function() return math.random(1, 6) end", "field 'random'"),
        ("return function() return load('return io.open')() end", "global 'io'"),
    ])
    func theOutsideIsNotReachable(text: String, fragment: String) {
        expectFailure(text, .runtime, containing: fragment)
    }

    @Test func bytecodeCannotBeLoaded() {
        // The header of a real Lua 5.4 chunk; in text mode load refuses it before parsing.
        let text = """
        return function()
          local header = '\\27LuaT\\0\\25\\147\\r\\n\\26\\n\\4\\8\\8'
          local a, errA = load(header)
          local b, errB = load(header, 'x', 'b')
          local c, errC = load(header, 'x', 'bt', {})
          return {tostring(a) .. ' ' .. errA, tostring(b) .. ' ' .. errB, tostring(c) .. ' ' .. errC}
        end
        """
        let refusal = "nil attempt to load a binary chunk (mode is 't')"
        #expect(F.outcome(text) == .refused([refusal, refusal, refusal]))
    }

    @Test func loadedChunksAreBounded() {
        let text = """
        return function()
          local big = string.rep('x = 1\\n', 20000)
          local a, errA = load(big)
          local pieces = 0
          local b, errB = load(function() pieces = pieces + 1 if pieces < 100 then return string.rep('-- pad\\n', 1000) end end)
          return {tostring(a) .. ' ' .. errA, tostring(b) .. ' ' .. errB}
        end
        """
        let bound = "chunk larger than 65536 bytes (the sandbox bound)"
        #expect(F.outcome(text) == .refused(["nil " + bound, "nil " + bound]))
    }

    @Test func aLoopOfSlowCCallsIsStoppedByTheClock() {
        // Each sort is one VM instruction; the call hook sees the deadline between calls.
        let budget = LuaBudget(instructionsMax: Int64.max, memoryBytesMax: 16 << 20, cpuTimeMsMax: 50,
                               hookIntervalInstructions: 1_000_000)
        let text = "return function() local t = {} for i = 1, 200000 do t[i] = (i * 7919) % 200000 end while true do table.sort(t) end end"
        #expect(F.run(text, budget: budget).outcome.failureKind == .timeBudget)
        expectNextDecisionUnaffected()
    }

    @Test func loadedTextRunsInTheSandbox() {
        #expect(F.outcome("return function() return load('return tostring(io) .. tostring(string.dump)')() end")
                == .refused(["nilnil"]))
        #expect(F.outcome("return function() local e = {y = 'own'} return load('return y', 'c', 't', e)() end")
                == .refused(["own"]))
    }

    // MARK: Tampering

    @Test(arguments: [
        ("return function(f) f.request = nil end", "facts are read-only (cannot set field 'request')"),
        ("return function(f) f.candidate.durable_lsn = 99999 end", "facts are read-only"),
        ("return function(f) f.nodes[4] = {} end", "facts are read-only"),
        ("return function(f) table.insert(f.nodes, {}) end", "facts are read-only"),
        ("return function(f) table.sort(f.nodes, function(a, b) return a.id > b.id end) end", "facts are read-only"),
        ("return function(f) setmetatable(f, nil) end", "cannot change a protected metatable"),
        ("return function(f) setmetatable(f.candidate, {}) end", "cannot change a protected metatable"),
    ])
    func factsCannotBeChanged(text: String, fragment: String) {
        expectFailure(text, .runtime, containing: fragment)
    }

    @Test func factsMetatablesAreHidden() {
        let text = """
        return function(f)
          return {getmetatable(f), getmetatable(f.nodes), getmetatable(''), tostring(next(f))}
        end
        """
        #expect(F.outcome(text) == .refused(["facts are read-only", "facts are read-only",
                                             "the string metatable is protected", "nil"]))
    }

    @Test func nothingOnePolicyChangesIsSeenByTheNext() {
        let vandal = """
        x = 'left behind'
        string.rep = function() return 'hijacked' end
        string.find = nil
        table.concat = nil
        math.max = nil
        _G.print = nil
        setmetatable(_G, {__index = function() return 'ghost' end})
        return function(f) y = 'also left'; return nil end
        """
        #expect(F.outcome(vandal) == .noObjection)
        let witness = """
        return function(f)
          if x ~= nil or y ~= nil or unknown ~= nil then return 'globals leaked' end
          if string.rep('a', 2) ~= 'aa' or ('a'):rep(2) ~= 'aa' then return 'string library leaked' end
          if not string.find('abc', 'b') or table.concat({'a'}) ~= 'a' or math.max(1, 2) ~= 2 then
            return 'library tables leaked'
          end
          print('still here')
        end
        """
        let run = F.run(witness)
        #expect(run.outcome == .noObjection)
        #expect(run.printed == ["still here"])
    }

    // MARK: Error objects, recursion, finalizers

    @Test(arguments: [
        ("return function() error(setmetatable({}, {__tostring = function() while true do end end})) end", "error object is a table value"),
        ("return function() error(setmetatable({}, {__index = function() error('boom') end, __tostring = function() return {} end})) end", "error object is a table value"),
        ("return function() error() end", "error object is nil"),
        ("return function() error(coroutine.create(function() end)) end", "error object is a thread value"),
        ("return function() error(42) end", "error object is a number value"),
    ])
    func misbehavingErrorObjectsAreNamedNotConverted(text: String, fragment: String) {
        let outcome = F.outcome(text)
        #expect(outcome == .failed(kind: .runtime, message: "policies/p.lua:1: \(fragment)"))
        expectNextDecisionUnaffected()
    }

    @Test func aHugeErrorMessageIsCut() throws {
        let failure = try #require(F.failure("return function() error(string.rep('e', 100000)) end"))
        #expect(failure.kind == .runtime)
        #expect(failure.message.utf8.count < PolicySandbox.messageBytesMax + 64)
    }

    @Test func deepRecursionFails() {
        for text in [
            "return function() local function f(n) return 1 + f(n + 1) end return f(1) end",
            "return function() local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x end",
            "return function() local s = string.rep('(', 300) .. '1' .. string.rep(')', 300) return load('return ' .. s)() end",
        ] {
            let outcome = F.outcome(text)
            #expect(outcome.refuses)
            #expect([.runtime, .memoryBudget].contains(outcome.failureKind), "\(outcome)")
        }
        expectNextDecisionUnaffected()
    }

    @Test func finalizersAreRefused() {
        expectFailure("return function() setmetatable({}, {__gc = function() while true do end end}) end",
                      .runtime, containing: "__gc is not allowed")
        expectFailure("return function() setmetatable({}, {__gc = false}) end", .runtime, containing: "__gc is not allowed")
        // A __gc added after setmetatable never makes the object finalizable (Lua 5.4), so
        // closing the state runs nothing.
        let late = "return function() local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end end"
        #expect(F.outcome(late) == .noObjection)
        expectNextDecisionUnaffected()
    }
}

extension PolicyOutcome {
    var failureKind: PolicyFailureKind? {
        if case .failed(let kind, _) = self { return kind }
        return nil
    }
}
