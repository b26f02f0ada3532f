// DecisionDigestTests.swift — the compare-and-swap digest covers what the decision depended on
// and not positions (DecisionDigest.swift); a change it covers is named by path.
// The live dry run / real run under writes: LiveFactsProcessTests.swift.
@testable import AeroServer
import AeroCore
import AeroPromotion
import Foundation
import Testing

@Suite("Decision digest (compare-and-swap)")
struct DecisionDigestTests {
    static let base = FactsFixtures.cluster(nodeCount: 4)

    /// `base` with `change` applied to its JSON, revalidated.
    static func edited(_ change: (inout [String: JSONValue]) -> Void) throws -> FactsDocument {
        guard case .object(var members) = base.json else { preconditionFailure("facts are an object") }
        change(&members)
        return try FactsDocument(json: .object(members))
    }

    static func editNode(_ index: Int, _ change: @escaping (inout [String: JSONValue]) -> Void) throws -> FactsDocument {
        try edited { members in
            var nodes = members["nodes"]!.arrayValue!
            guard case .object(var node) = nodes[index] else { preconditionFailure("a node is an object") }
            change(&node)
            nodes[index] = .object(node)
            members["nodes"] = .array(nodes)
        }
    }

    static func basis(_ facts: FactsDocument) -> JSONValue {
        DecisionDigest.basis(facts, PromotionEngine(policies: []).decide(facts))
    }

    @Test("positions, contact times and the capture time move; the digest does not")
    func positionsAreNotCovered() throws {
        let moved = try Self.edited { members in
            members["captured_at"] = .string("2026-12-04T10:00:00Z")
            var nodes = members["nodes"]!.arrayValue!
            for index in 1..<nodes.count {
                guard case .object(var node) = nodes[index] else { continue }
                // Every replica a little further on, as under continuous writes.
                for key in ["durable_lsn", "applied_lsn", "primary_acked_lsn"] {
                    if let value = node[key]?.integerValue { node[key] = .integer(value + 3) }
                }
                node["last_contact_ms"] = .integer(17)
                nodes[index] = .object(node)
            }
            members["nodes"] = .array(nodes)
        }
        #expect(moved.digest != Self.base.digest, "the document itself did change")
        #expect(PromotionEngine(policies: []).decide(moved).allowed)
        #expect(DecisionDigest.digest(Self.basis(moved)) == DecisionDigest.digest(Self.basis(Self.base)))
        #expect(DecisionDigest.changes(from: Self.basis(Self.base), to: Self.basis(moved)).isEmpty)
    }

    @Test("a member unreachable, another epoch, a label, a policy set: each changes the digest and is named")
    func coveredChangesAreNamed() throws {
        let old = Self.basis(Self.base)
        let unreachable = try Self.editNode(3) { node in
            for key in ["epoch", "durable_lsn", "applied_lsn", "acked_lsn", "primary_acked_lsn", "wal", "recovering", "following", "last_contact_ms",
                        "policy_set_digest", "engine_version"] {
                node[key] = .null
            }
            node["reachable"] = .bool(false)
        }
        let cases: [(FactsDocument, String)] = [
            (unreachable, "nodes[n0003].reachable: true -> false"),
            (try Self.edited { members in
                guard case .object(var cluster) = members["cluster"]! else { return }
                cluster["labels"] = .object(["freeze": .string("yes")])
                members["cluster"] = .object(cluster)
            }, #"cluster.labels.freeze: null -> "yes""#),
            (try Self.editNode(2) { $0["following"] = .string("n0003") }, #"nodes[n0002].following: "n0000" -> "n0003""#),
        ]
        for (facts, named) in cases {
            let new = Self.basis(facts)
            #expect(DecisionDigest.digest(new) != DecisionDigest.digest(old), "\(named)")
            let changes = DecisionDigest.changes(from: old, to: new)
            #expect(changes.contains(named), "\(changes)")
        }
        // Another epoch: the cluster's and every reachable node's, all named.
        let epochs = try Self.edited { members in
            guard case .object(var cluster) = members["cluster"]! else { return }
            cluster["epoch"] = .integer(8)
            members["cluster"] = .object(cluster)
        }
        #expect(DecisionDigest.changes(from: old, to: Self.basis(epochs)).contains("cluster.epoch: 7 -> 8"))
        // The same facts decided with another policy set.
        let decided = PromotionEngine(policies: []).decide(Self.base)
        let otherSet = Decision(facts: Self.base, rules: decided.rules, policies: decided.policies,
                                policySetDigest: String(repeating: "ab", count: 32))
        let other = DecisionDigest.basis(Self.base, otherSet)
        let policyChanges = DecisionDigest.changes(from: old, to: other)
        #expect(policyChanges.contains { $0.hasPrefix("policies.set_digest: ") }, "\(policyChanges)")
    }

    @Test("a refusal's message names at most changesNamedMax changes and counts the rest")
    func describeIsBounded() {
        let many = (0..<20).map { "nodes[n\($0)].reachable: true -> false" }
        let text = DecisionDigest.describe(many)
        #expect(text.contains("nodes[n7].reachable") && !text.contains("nodes[n8].reachable"))
        #expect(text.hasSuffix("and \(20 - DecisionDigest.changesNamedMax) more"))
    }
}
