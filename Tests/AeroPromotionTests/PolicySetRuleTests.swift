// PolicySetRuleTests.swift — POLICY-1 (PromotionRules+PolicySet.swift): one policy set per
// cluster. Trips it in a real refusal naming the member and both digests; passes on /1.
import AeroCore
import AeroPromotion
import Testing
import AeroTestSupport

@Suite struct PolicySetRuleTests {
    static let other = String(repeating: "ab", count: 32)

    @Test func passesWhenEveryReachableMemberAgrees() {
        let facts = FactsFixtures.cluster(nodeCount: 5)
        let result = rule("POLICY-1", facts)
        #expect(result.passed, "\(result.message)")
        #expect(result.facts["$.nodes[3].policy_set_digest"] == .string(FactsFixtures.fixturePolicySetDigest))
    }

    @Test func refusesAMemberWithAnotherPolicySetNamingItAndTheDigests() throws {
        let facts = try FactsDocument(json: setting(FactsFixtures.cluster(nodeCount: 5).json, "nodes.3.policy_set_digest", .string(Self.other)))
        let decision = PromotionEngine(policies: []).decide(facts)
        #expect(!decision.allowed)
        #expect(decision.reasons.map(\.source) == ["rule:\(RuleID.policy1.rawValue)"])
        let message = decision.reasons[0].message
        #expect(message.contains("n0003 (policy set \(Self.other.prefix(12))"), "\(message)")
        #expect(message.contains("candidate n0001 runs policy set \(FactsFixtures.fixturePolicySetDigest.prefix(12))"), "\(message)")
        #expect(message.contains("the decision would depend on which node was asked"))
    }

    @Test func refusesAnotherEngineAndAnUnusablePolicyDir() throws {
        let base = FactsFixtures.cluster(nodeCount: 4).json
        let engine = try FactsDocument(json: setting(base, "nodes.2.engine_version", .string("0.0.1")))
        #expect(rule("POLICY-1", engine).message.contains("n0002 (policy set \(FactsFixtures.fixturePolicySetDigest.prefix(12)), engine 0.0.1)"))
        let unusable = try FactsDocument(json: setting(base, "nodes.2.policy_set_digest", .null))
        #expect(!rule("POLICY-1", unusable).passed)
        #expect(rule("POLICY-1", unusable).message.contains("n0002 (policy set none (policy_dir unusable)"))
        let candidate = try FactsDocument(json: setting(base, "nodes.1.policy_set_digest", .null))
        #expect(rule("POLICY-1", candidate).message.contains("it reported no policy set"))
    }

    @Test func anUnreachableMemberIsNotCompared() throws {
        var json = FactsFixtures.cluster(nodeCount: 4).json
        for (path, value) in unreachableChanges(3) { json = setting(json, path, value) }
        json = setting(json, "nodes.3.policy_set_digest", .null)
        json = setting(json, "nodes.3.engine_version", .null)
        #expect(rule("POLICY-1", try FactsDocument(json: json)).passed)
    }

    @Test func aV1DocumentHasNothingToCompare() throws {
        let result = rule("POLICY-1", try exampleFacts("failover-ok"))
        #expect(result.passed && result.message.contains("aerodb.facts/1"))
    }
}
