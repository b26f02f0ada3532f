import AeroCore
import Testing
@testable import AeroPolicy
#if canImport(Glibc)
import Glibc
#endif

/// Issue 12's classes of unbounded work inside one C call, each refused in-process before it
/// runs (or counted), naming the bound, within a wall-time bound.
@Suite struct ClosedClassesTests {
    typealias F = SandboxFixtures

    private func expectRefusal(_ text: String, _ kind: PolicyFailureKind, _ fragment: String, wallMsMax: Double = 2_000,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        let start = PolicyWorkerTests.monotonicMs()
        let outcome = F.outcome(text)
        let elapsed = PolicyWorkerTests.monotonicMs() - start
        guard case .failed(let actual, let message) = outcome else {
            Issue.record("expected a \(kind) failure, got \(outcome)", sourceLocation: sourceLocation)
            return
        }
        #expect(actual == kind, "\(message)", sourceLocation: sourceLocation)
        #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
        #expect(elapsed < wallMsMax, "took \(elapsed) ms", sourceLocation: sourceLocation)
    }

    @Test func aCallableTableIsRefusedWhereTheMetatableIsSet() {
        expectRefusal("return function() local t = {} setmetatable(t, {__call = t}) return t() end",
                      .runtime, "__call must be a function")
        #expect(F.outcome("return function() local t = setmetatable({}, {__call = function() return 'called' end}) return t() end")
                == .refused(["called"]))
    }

    @Test func weakTablesAreRefused() {
        expectRefusal("return function() setmetatable({}, {__mode = 'k'}) end", .runtime, "__mode (weak tables) is not allowed")
    }

    @Test func gsubEscapesTimesMatchesAreBounded() {
        expectRefusal("return function() return (('x'):rep(60000)):gsub('', ('%0'):rep(1 << 19)) end",
                      .runtime, "exceeds the sandbox bound of 1048576")
        #expect(F.outcome("return function() return (('a=1,b=2'):gsub('(%w+)=(%w+)', '%2=%1')) end") == .refused(["1=a,2=b"]))
    }

    @Test func anIndexChainIsBoundedInTheTableFunctions() {
        let chain = "local t = {1, 2, 3} for i = 1, 2000 do t = setmetatable({}, {__index = t}) end"
        for call in ["table.concat(t)", "table.unpack(t, 1, 3)", "table.sort(t)"] {
            expectRefusal("return function() \(chain) return \(call) end", .runtime, "__index chain longer than 16 tables")
        }
    }

    /// 2,000 coroutines of 60 instructions each: before, each hid its instructions below one
    /// hook interval; now each is charged an interval, so the count is at least the work.
    @Test func shortCoroutinesAreCounted() {
        let run = F.run("return function() for i = 1, 2000 do coroutine.wrap(function() local x = 0 for j = 1, 20 do x = x + j end end)() end end")
        #expect(run.instructionsUsed >= 2000 * 100, "\(run.instructionsUsed)")
        expectRefusal("return function() for i = 1, 20000 do coroutine.resume(coroutine.create(function() end)) end end",
                      .instructionBudget, "instruction budget of 1000000 exceeded")
    }

    @Test func loadReaderNumberPiecesCountTowardsTheChunkBound() {
        let text = "return function() local n = 0 local f, err = load(function() n = n + 1 if n < 20000 then return 1234567 end end) return tostring(f) .. ' ' .. err end"
        #expect(F.outcome(text) == .refused(["nil chunk larger than 65536 bytes (the sandbox bound)"]))
    }

    @Test func namesNeverShowAnAddress() {
        let text = """
        return function()
          local a, b = {}, function() end
          return {tostring(a), tostring(b), tostring(a), tostring(print), string.format('%s|%5s', a, b),
                  select(2, pcall(string.format, '%p', a))}
        end
        """
        #expect(F.outcome(text) == .refused(["table: 1", "function: 2", "table: 1", "function: 3", "table: 1|function: 2",
                                             "bad argument #2 to 'format' ('%p' shows an address; not in the policy sandbox)"]))
    }

    /// Five runs of the same policy give byte-identical answers (tables named, printed).
    @Test func fiveRunsAreIdentical() {
        let text = "return function(f) local t = {x = {}, y = print} print(t, t.x, f) return tostring(t.y) .. tostring(t) end"
        let runs = (0..<5).map { _ in F.run(text) }
        #expect(Set(runs.map { "\($0.outcome) \($0.printed)" }).count == 1, "\(runs.map(\.outcome))")
    }
}
