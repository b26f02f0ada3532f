import AeroCore
import Testing
@testable import AeroPolicy

/// Item 1 of issue 12: a run that is over a budget when a call returns is refused naming the
/// budget, even when no hook fired while the budget ran out.
@Suite struct FailClosedTests {
    typealias F = SandboxFixtures

    /// No hook can fire during this loop: no function call (no call hook) and fewer
    /// instructions than the count hook's interval. It runs for far more than the 2 ms budget
    /// and then returns nil; before the re-check after each call it was allowed.
    @Test func aRunOverItsTimeBudgetWhenItReturnsIsRefused() {
        let budget = LuaBudget(instructionsMax: 50_000_000, memoryBytesMax: 16 << 20, cpuTimeMsMax: 2,
                               hookIntervalInstructions: 50_000_000)
        let text = "return function() local x = 0 for i = 1, 8000000 do x = x + i end if x < 0 then return 'never' end end"
        let run = F.run(text, budget: budget)
        #expect(run.outcome.failureKind == .timeBudget, "\(run.outcome)")
        if case .failed(_, let message) = run.outcome { #expect(message.contains("time budget of 2 ms exceeded"), "\(message)") }
    }

    /// The same at the top level of the file (a load-time call).
    @Test func aTopLevelOverItsTimeBudgetIsRefused() {
        let budget = LuaBudget(instructionsMax: 50_000_000, memoryBytesMax: 16 << 20, cpuTimeMsMax: 2,
                               hookIntervalInstructions: 50_000_000)
        let text = "local x = 0 for i = 1, 8000000 do x = x + i end\nreturn function() end"
        #expect(F.run(text, budget: budget).outcome.failureKind == .timeBudget)
    }

    /// The control: the same loop within a generous budget is answered normally, so the two
    /// tests above fail for the budget alone.
    @Test func theSameLoopWithinItsBudgetIsAnswered() {
        let budget = LuaBudget(instructionsMax: 50_000_000, memoryBytesMax: 16 << 20, cpuTimeMsMax: 60_000,
                               hookIntervalInstructions: 50_000_000)
        let text = "return function() local x = 0 for i = 1, 8000000 do x = x + i end if x < 0 then return 'never' end end"
        #expect(F.run(text, budget: budget).outcome == .noObjection)
    }
}
