// PolicyToolingTests.swift — aerodb-policy's instrumentation (PolicyTooling, aero_tooling.c)
// observes a run without changing it, counts exactly the lines that hold code, and names
// the facts a policy read by their paths in the document.
import AeroCore
import AeroTestSupport
import Foundation
import Testing
@testable import AeroPolicy

@Suite struct PolicyToolingTests {
    static let repositoryRoot = Repository.root

    static func shippedPolicies() throws -> [PolicySource] {
        try PolicyLoader.load(paths: [repositoryRoot.appendingPathComponent("policies").path])
    }

    @Test func toolingChangesNoRunOutcomeInstructionsOrMemory() throws {
        let policies = try Self.shippedPolicies()
        #expect(policies.count >= 5)
        let plain = PolicySandbox()
        let tooling = PolicyTooling(coverage: true, factsReads: true)
        let instrumented = PolicySandbox(tooling: tooling)
        for policy in policies {
            let a = plain.run(policy, facts: SandboxFixtures.facts)
            let b = instrumented.run(policy, facts: SandboxFixtures.facts)
            #expect(a == b, "\(policy.name): \(a) against \(b)")
        }
        #expect(tooling.coverage().count == policies.count)
        #expect(tooling.takeFactsReads().count == policies.count)
    }

    @Test func coverageCountsLinesThatHoldCodeAndHowOftenTheyRan() throws {
        let policy = PolicySource(name: "loop", path: "policies/loop.lua", text: """
            local limit = 3
            return function(facts)
                local total = 0
                for i = 1, limit do
                    total = total + i
                end
                if total > 100 then
                    return "never"
                end
                return nil
            end
            """)
        let tooling = PolicyTooling(coverage: true, factsReads: false)
        let sandbox = PolicySandbox(tooling: tooling)
        _ = sandbox.run(policy, facts: SandboxFixtures.facts)
        _ = sandbox.run(policy, facts: SandboxFixtures.facts)
        let file = try #require(tooling.coverage().first)
        #expect(file.executableLines == [1, 3, 4, 5, 7, 8, 10, 11])
        #expect(file.uncoveredLines == [8])
        #expect(file.hits[5] == 6, "three iterations, two runs")
        #expect(file.hits[1] == 2 && file.hits[3] == 2)
        #expect(Set(file.hits.keys).isSubset(of: Set(file.executableLines)))
    }

    @Test func factsReadsAreNamedByDocumentPaths() throws {
        let policy = PolicySource(name: "reader", path: "policies/reader.lua", text: """
            return function(facts)
                local zone = facts.candidate.labels.zone
                local count = #facts.nodes
                for key, value in pairs(facts.cluster.labels) do end
                local third = facts.nodes[3].wal.corrupt
                local missing = facts.request["no such key"]
                return nil
            end
            """)
        let tooling = PolicyTooling(coverage: false, factsReads: true)
        let run = PolicySandbox(tooling: tooling).run(policy, facts: SandboxFixtures.facts)
        #expect(run.outcome == .noObjection)
        let reads = try #require(tooling.takeFactsReads()["reader"])
        #expect(!reads.truncated)
        #expect(reads.paths == [
            "$.nodes[1]", "$.nodes[1].labels", "$.nodes[1].labels.zone", "$.nodes", "$.cluster", "$.cluster.labels",
            "$.cluster.labels.freeze", "$.nodes[2]", "$.nodes[2].wal", "$.nodes[2].wal.corrupt", "$.request",
            "$.request[\"no such key\"]",
        ])
        #expect(tooling.takeFactsReads().isEmpty, "taken once")
    }
}
