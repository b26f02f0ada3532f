import AeroCore
import Testing
@testable import AeroPolicy
#if canImport(Glibc)
import Glibc
#endif

/// Process isolation (issue 12, "a last line of defence"): a policy that never returns from a
/// C call is stopped by the supervisor at its budget plus the margin, refused naming the time
/// budget, and the rest of the decision is answered by a fresh worker.
@Suite(.serialized) struct PolicyWorkerTests {
    typealias F = SandboxFixtures

    static func monotonicMs() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
    }

    /// A self-referential __call set after setmetatable: Lua resolves the chain in C with no
    /// hook (minutes of CPU in-process). The worker is killed at 100 ms + 50 ms.
    @Test func aPolicyStuckInACCallIsStoppedAtItsDeadline() {
        let budget = LuaBudget(instructionsMax: 1_000_000, memoryBytesMax: 16 << 20, cpuTimeMsMax: 100,
                               hookIntervalInstructions: 100)
        let sandbox = PolicySandbox(budget: budget, isolation: .worker)
        let stuck = F.policy("return function() local mt = {} local t = setmetatable({}, mt) mt.__call = t return t() end", name: "a-stuck")
        let after = F.policy("return function(f) return 'candidate ' .. f.candidate.id end", name: "b-after")
        _ = sandbox.runAll([after], facts: PolicyFacts(F.facts))  // a worker started before timing
        let start = Self.monotonicMs()
        let runs = sandbox.runAll([stuck, after], facts: PolicyFacts(F.facts))
        let elapsedMs = Self.monotonicMs() - start
        #expect(runs.count == 2)
        #expect(runs[0].outcome == .failed(kind: .timeBudget, message:
            "policies/a-stuck.lua: time budget of 100 ms exceeded (the policy worker was stopped at its deadline)"))
        #expect(runs[1].outcome == .refused(["candidate b"]))
        // Budget 100 ms + margin 50 ms on a quiet host; the hard cap is 4 × 100 + 50 ms, plus
        // starting a fresh worker for the second policy.
        print("stuck policy answered after \(elapsedMs) ms")
        #expect(elapsedMs < 450 + 1_000, "\(elapsedMs) ms")
    }

    /// The worker gives exactly what the in-process sandbox gives, for every kind of outcome.
    @Test func workerRunsEqualInProcessRuns() {
        let texts = [
            "return function() end",
            "return function(f) return {'one', f.candidate.id} end",
            "return function() print('hello', {}, print) return 'r' end",
            "return function() error('boom') end",
            "return function() while true do end end",
            "return function() return 42 end",
            "return function() local s = 'x' while true do s = s .. s end end",
        ]
        let policies = texts.enumerated().map { F.policy($0.element, name: "p\($0.offset)") }
        let facts = PolicyFacts(F.facts)
        let inProcess = PolicySandbox(budget: F.testBudget).runAll(policies, facts: facts)
        let worker = PolicySandbox(budget: F.testBudget, isolation: .worker).runAll(policies, facts: facts)
        #expect(worker == inProcess)
    }

    /// A worker that cannot be started is every policy's failure (fail closed), named.
    @Test func aMissingWorkerRefuses() {
        setenv("AERODB_POLICY_WORKER", "/nonexistent/aerodb-policy-worker", 1)
        PolicyWorkerPool.shared.retireIdleWorkers()
        defer { unsetenv("AERODB_POLICY_WORKER") }
        let runs = PolicySandbox(budget: F.testBudget, isolation: .worker)
            .runAll([F.policy("return function() end")], facts: PolicyFacts(F.facts))
        #expect(runs.count == 1)
        guard case .failed(let kind, let message) = runs[0].outcome else {
            Issue.record("expected a failure, got \(runs[0].outcome)")
            return
        }
        #expect(kind == .runtime)
        #expect(message.hasPrefix("policies/p.lua: no policy worker could be started"), "\(message)")
    }
}
