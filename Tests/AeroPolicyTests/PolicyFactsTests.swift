// PolicyFactsTests.swift — split from PolicySandboxTests.swift (one suite per file).
import AeroCore
import Testing
@testable import AeroPolicy

@Suite struct PolicyFactsTests {
    typealias F = SandboxFixtures

    @Test func encodedFactsGiveTheSameRunAsTheDocument() {
        let policy = F.policy("return function(f) return f.candidate.id .. #f.nodes end")
        let sandbox = PolicySandbox(budget: F.testBudget)
        let prepared = PolicyFacts(F.facts)
        #expect(sandbox.run(policy, facts: prepared) == sandbox.run(policy, facts: F.facts))
        #expect(sandbox.run(policy, facts: prepared).outcome == .refused(["b3"]))
    }

    @Test func aNewDocumentIsNeverAnsweredFromTheLastOne() {
        let policy = F.policy("return function(f) return tostring(f.cluster.epoch) end")
        let sandbox = PolicySandbox(budget: F.testBudget)
        for epoch in [7, 8, 7, 9] as [Int64] {
            guard case .object(var root) = F.facts, case .object(var cluster)? = root["cluster"] else {
                Issue.record("fixture shape")
                return
            }
            cluster["epoch"] = .integer(epoch)
            root["cluster"] = .object(cluster)
            #expect(sandbox.run(policy, facts: .object(root)).outcome == .refused(["\(epoch)"]))
        }
    }

    @Test func factsTooDeepFailClosed() {
        var deep: JSONValue = .integer(1)
        for _ in 0..<(FactsTape.depthMax + 1) { deep = .array([deep]) }
        let run = F.run("return function() end", facts: .object(["deep": deep]))
        #expect(run.outcome.failureKind == .load)
    }

    @Test func factsCostFollowsWhatThePolicyReads() {
        // Facts are materialized one level at a time on first access: reading one field of a
        // 1,000-node document must cost far less memory than walking every node.
        let facts = F.facts(nodes: 1_000)
        let one = F.run("return function(f) return f.request.candidate end", facts: facts)
        let all = F.run("return function(f) local n = 0 for _, node in ipairs(f.nodes) do if node.reachable then n = n + 1 end end return tostring(n) end", facts: facts)
        #expect(one.outcome == .refused(["n1"]))
        #expect(all.outcome == .refused(["1000"]))
        #expect(one.memoryBytesPeak * 4 < all.memoryBytesPeak)
        // Repeatable: the same reads allocate alike.
        #expect(F.run("return function(f) return f.request.candidate end", facts: facts) == one)
    }

    @Test func factsAPolicyReadsAreNotChargedToItsMemoryBudget() {
        // A whole 1,000-node document takes far more than this budget once read; reading it
        // all must still pass (facts are the host's, as when they were built up front).
        let budget = LuaBudget(instructionsMax: F.testBudget.instructionsMax, memoryBytesMax: 64 << 10,
                               cpuTimeMsMax: F.testBudget.cpuTimeMsMax,
                               hookIntervalInstructions: F.testBudget.hookIntervalInstructions)
        let text = "return function(f) local n = 0 for _, node in ipairs(f.nodes) do if node.labels.zone and node.wal ~= f.candidate then n = n + 1 end end return tostring(n) end"
        let run = F.run(text, facts: F.facts(nodes: 1_000), budget: budget)
        #expect(run.outcome == .refused(["1001"]))
        // The policy's own allocations still count.
        let greedy = F.run("return function(f) local t = {} for i = 1, 100000 do t[i] = i end end", budget: budget)
        #expect(greedy.outcome.failureKind == .memoryBudget)
    }

    @Test func aThousandNodesWork() {
        let facts = F.facts(nodes: 1_000)
        let text = "return function(f) local n = 0 for _, node in ipairs(f.nodes) do if node.reachable then n = n + 1 end end return tostring(n) .. f.candidate.id end"
        #expect(F.outcome(text, facts: facts) == .refused(["1000n1"]))
    }
}
