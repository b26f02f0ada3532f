// PolicyBenchCLITests.swift — `aerodb-policy bench` as a process: one block per policy with
// p50/p99 against the budgets, JSON parsed back, and instructions equal to what eval reports
// (the same engine and sandbox; instruction counts are deterministic).
import Foundation
import Testing

@Suite struct PolicyBenchCLITests {
    @Test func benchReportsEachPolicyAgainstItsBudgets() throws {
        let run = try PolicyCLI.run(["bench", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies, "--runs", "20"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.hasPrefix("20 runs per policy, each in a fresh sandbox; budgets: 200 ms CPU, 1000000 instructions, 16777216 bytes of memory"))
        let names = try Shipped.policyNames()
        #expect(names.count >= 6)
        for name in names {
            #expect(run.stdout.contains("\n\(name)  (no objection)\n"), "\(name): \(run.stdout)")
        }
        #expect(run.stdout.split(separator: "\n").filter { $0.hasPrefix("  cpu           p50 ") && $0.contains(" of 200 ms") }.count == names.count)
        #expect(run.stdout.split(separator: "\n").filter { $0.hasPrefix("  instructions  p50 ") }.count == names.count)
        #expect(run.stdout.split(separator: "\n").filter { $0.hasPrefix("  memory        p50 ") }.count == names.count)
    }

    @Test func benchJSONMatchesEvalsInstructionCounts() throws {
        let bench = try PolicyCLI.run(["bench", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies,
                                       "--runs", "5", "--format", "json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any])
        #expect(document["runs"] as? Int == 5)
        let policies = try #require(document["policies"] as? [[String: Any]])
        let eval = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies, "--format", "json"])
        let decided = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        let runs = try #require(decided["policies"] as? [[String: Any]])
        #expect(policies.count == runs.count && !runs.isEmpty)
        for (measured, run) in zip(policies, runs) {
            #expect(measured["name"] as? String == run["name"] as? String)
            let instructions = try #require(measured["instructions"] as? [String: Int])
            #expect(instructions["p50"] == run["instructions_used"] as? Int)
            #expect(instructions["p99"] == run["instructions_used"] as? Int, "deterministic")
            let cpu = try #require(measured["cpu_ns"] as? [String: Int])
            #expect(cpu["p50"]! > 0 && cpu["p50"]! <= cpu["p99"]!)
            let memory = try #require(measured["memory_bytes_charged"] as? [String: Int])
            let peak = try #require(measured["state_memory_bytes_peak"] as? [String: Int])
            #expect(memory["p99"]! < 16 << 20 && memory["p99"]! <= peak["p99"]!)
        }
    }

    @Test func benchRefusesBadFlags() throws {
        let zero = try PolicyCLI.run(["bench", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies, "--runs", "0"])
        #expect(zero.status == 2)
        #expect(zero.stderr.contains("--runs must be between 1 and 100000"))
        let none = try PolicyCLI.run(["bench", "--facts", Shipped.failoverFacts])
        #expect(none.status == 2)
        #expect(none.stderr.contains("give at least one --policy"))
    }
}
