// ShippedPoliciesProcessTests.swift — every shipped policy trips live (issue 11), on a real
// cluster of `aerodb serve` processes with the policy as the site's policy_dir:
// require-requested-by (an anonymous request), keep-a-replica (a replica down),
// different-zone-from-primary (the candidate configured in the primary's zone),
// max-replication-lag (the candidates' replication link paused while writes continue),
// min-interval-between-promotions (a second switchover right after the first), and POLICY-1
// (a member with another policy set). change-freeze trips in ClusterLabelsProcessTests.
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("Shipped policies trip live (real processes)", .serialized)
struct ShippedPoliciesProcessTests {
    static func sources(_ reply: PromoCluster.Reply) -> [String] {
        reply.json?["decision"]?["reasons"]?.arrayValue?.compactMap { $0["source"]?.stringValue } ?? []
    }

    static func reasons(_ reply: PromoCluster.Reply) -> String {
        (reply.json?["decision"]?["reasons"]?.arrayValue ?? []).compactMap { $0["message"]?.stringValue }.joined(separator: " | ")
    }

    @Test("require-requested-by refuses an anonymous request")
    func requireRequestedBy() async throws {
        let cluster = try PromoCluster(policies: ["require-requested-by"])
        defer { cluster.stopAll() }
        try cluster.startAll()
        let anonymous = await cluster.request(1, "POST", "/v1/admin/promote", body: #"{"kind":"switchover","dry_run":true,"requested_by":"root"}"#)
        #expect(Self.sources(anonymous) == ["policy:require-requested-by"], "\(anonymous.text)")
        let named = await cluster.promote(1, kind: "switchover", dryRun: true)
        #expect(named.json?["outcome"]?.stringValue == "allowed", "\(named.text)")
    }

    @Test("keep-a-replica refuses a switchover that would leave no healthy replica (n3 down)")
    func keepAReplica() async throws {
        let cluster = try PromoCluster(syncTimeoutMs: 300, policies: ["keep-a-replica"])
        defer { cluster.stopAll() }
        try cluster.startAll()
        #expect(await cluster.promote(1, kind: "switchover", dryRun: true).json?["outcome"]?.stringValue == "allowed")
        cluster.kill9(2)
        let refused = await cluster.promote(1, kind: "switchover", dryRun: true)
        #expect(Self.sources(refused).contains("policy:keep-a-replica"), "\(refused.text)")
        #expect(Self.reasons(refused).contains("n3"), "\(Self.reasons(refused))")
    }

    @Test("different-zone-from-primary refuses a failover to a candidate in the primary's zone")
    func differentZone() async throws {
        let cluster = try PromoCluster(policies: ["different-zone-from-primary"])
        defer { cluster.stopAll() }
        // n2 is configured in zone "a", n1's zone, in every member's file.
        for node in 0..<PromoCluster.count { try cluster.editConfig(node, "members.1.labels.zone", .string("a")) }
        try cluster.startAll()
        #expect(await cluster.put(0, "k", "v").status == 200)
        cluster.kill9(0)
        let sameZone = await cluster.promote(1, kind: "failover", dryRun: true)
        #expect(Self.sources(sameZone).contains("policy:different-zone-from-primary"), "\(sameZone.text)")
        let otherZone = await cluster.promote(2, kind: "failover", dryRun: true)
        #expect(!Self.sources(otherZone).contains("policy:different-zone-from-primary"), "\(otherZone.text)")
    }

    @Test("max-replication-lag refuses a candidate whose replication is paused while writes continue")
    func maxReplicationLag() async throws {
        // The shipped policy with a limit a short test reaches (10 LSNs instead of 1000).
        let cluster = try PromoCluster(syncTimeoutMs: 150, proxyPrimary: true, policies: [])
        defer { cluster.stopAll() }
        let shipped = repoRootURL.appendingPathComponent("policies/max-replication-lag.lua")
        let text = try String(contentsOf: shipped, encoding: .utf8)
        let limited = text.replacingOccurrences(of: "local APPLIED_LAG_LSN_MAX = 1000", with: "local APPLIED_LAG_LSN_MAX = 10")
        #expect(limited != text, "the policy's knob moved; update this test")
        try limited.write(toFile: cluster.policyDir + "/max-replication-lag.lua", atomically: true, encoding: .utf8)
        try cluster.startAll()
        #expect(await cluster.promote(1, kind: "switchover", dryRun: true).json?["outcome"]?.stringValue == "allowed")
        // n1's replication to n2 and n3 stops; n1 goes on writing (durable there, not acknowledged).
        cluster.primaryProxies[1].partition(.blackhole)
        for i in 0..<20 { _ = await cluster.put(0, "lag\(i)", "v") }
        let refused = await cluster.promote(1, kind: "switchover", dryRun: true)
        cluster.primaryProxies[1].heal()
        #expect(Self.sources(refused).contains("policy:max-replication-lag"), "\(refused.text)")
    }

    @Test("min-interval-between-promotions refuses a second switchover right after the first")
    func minInterval() async throws {
        let cluster = try PromoCluster(policies: ["min-interval-between-promotions"])
        defer { cluster.stopAll() }
        try cluster.startAll()
        let first = await cluster.promote(1, kind: "switchover")
        #expect(first.json?["outcome"]?.stringValue == "promoted", "\(first.text)")
        #expect(first.json?["history_lsn"]?.integerValue != nil, "the epoch's history record was written: \(first.text)")
        // n1 now follows n2; asking n1 to switch back at once is refused, the record replicated to it.
        var back = await cluster.promote(0, kind: "switchover", dryRun: true)
        _ = await Deadline.waitUntil(timeoutMs: 5_000, pollMs: 50) {
            back = await cluster.promote(0, kind: "switchover", dryRun: true)
            return !(Self.sources(back).contains("rule:ROLE-1") || Self.sources(back).contains("rule:EPOCH-1"))
        }
        #expect(Self.sources(back) == ["policy:min-interval-between-promotions"], "\(back.text)")
        #expect(Self.reasons(back).contains("epoch 2 (switchover to n2, decision "), "\(Self.reasons(back))")
        let id = try #require(back.json?["decision_id"]?.stringValue)
        let record = try #require(await cluster.request(0, "GET", "/v1/admin/decisions/\(id)").json)
        let history = record["facts"]?["cluster"]?["history"]?.arrayValue ?? []
        #expect(history.map { $0["kind"]?.stringValue } == ["initial", "switchover"])
        #expect(history.last?["decision_id"] == first.json?["decision_id"])
    }

    @Test("POLICY-1 refuses when a reachable member runs another policy set, naming it and the digests")
    func onePolicySet() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        // n3 loads the shipped policies plus one more.
        let other = cluster.root + "/other-policies"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: cluster.policyDir) {
            try FileManager.default.copyItem(atPath: cluster.policyDir + "/" + name, toPath: other + "/" + name)
        }
        try FileManager.default.copyItem(atPath: repoRootURL.appendingPathComponent("policies/change-freeze.lua").path, toPath: other + "/change-freeze.lua")
        try cluster.editConfig(2, "policy_dir", .string(other))
        try cluster.startAll()
        let status = try #require(await cluster.request(2, "GET", "/v1/status").json?["node"])
        let n3Digest = try #require(status["policy_set_digest"]?.stringValue)
        let n2Digest = try #require(await cluster.request(1, "GET", "/v1/status").json?["node"]?["policy_set_digest"]?.stringValue)
        #expect(n3Digest != n2Digest)
        #expect(status["engine_version"]?.stringValue == AeroVersion.string)
        let refused = await cluster.promote(1, kind: "switchover", dryRun: true)
        #expect(Self.sources(refused) == ["rule:POLICY-1"], "\(refused.text)")
        #expect(Self.reasons(refused).contains("n3 (policy set \(n3Digest.prefix(12))"), "\(Self.reasons(refused))")
        #expect(Self.reasons(refused).contains("candidate n2 runs policy set \(n2Digest.prefix(12))"))
    }
}

/// The repository root, for the shipped policies.
let repoRootURL = Repository.root
