// PromotionRefusalTests.swift — trips the PROMOTE-* rules of the live promotion path on real
// processes: PROMOTE-BUSY-1, PROMOTE-CLAIM-1, PROMOTE-FENCE-1, PROMOTE-FOLLOW-1 (PROMOTE-DIGEST-1
// and PROMOTE-DIVERGED-1 are tripped in PromotionProcessTests).
import AeroCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Promotion refusals (real processes)", .serialized)
struct PromotionRefusalTests {
    @Test("PROMOTE-BUSY-1: a second promotion request on a node while one runs is refused, not queued")
    func busy() async throws {
        // n3 stops answering: each fact capture on n2 now waits facts_gather_timeout_ms (3 s),
        // so two requests sent together overlap on n2 however the machine schedules them.
        let cluster = try PromoCluster(factsGatherTimeoutMs: 3_000)
        defer { cluster.stopAll() }
        try cluster.startAll()
        let n3 = try #require(cluster.nodes[2])
        kill(n3.process.processIdentifier, SIGSTOP)
        defer { kill(n3.process.processIdentifier, SIGCONT) }
        async let a = cluster.promote(1, kind: "switchover", dryRun: true)
        async let b = cluster.promote(1, kind: "switchover", dryRun: true)
        let replies = await [a, b]
        let busy = replies.filter { $0.json?["rule"]?.stringValue == "PROMOTE-BUSY-1" }
        #expect(busy.count == 1, "\(replies.map(\.text))")
        #expect(busy.first?.status == 409)
        let firstReply = try #require(replies.first { $0.json?["rule"]?.stringValue != "PROMOTE-BUSY-1" })
        // The first one answered within the gather bound, with n3 unreachable and nothing guessed.
        let id = try #require(firstReply.json?["decision_id"]?.stringValue, "\(firstReply.text)")
        let record = try #require(await cluster.request(1, "GET", "/v1/admin/decisions/\(id)").json)
        let n3Facts = try #require(record["facts"]?["nodes"]?.arrayValue?[2])
        #expect(n3Facts["reachable"] == .bool(false))
        #expect(n3Facts["epoch"] == .null && n3Facts["durable_lsn"] == .null)
    }

    @Test("PROMOTE-CLAIM-1: a member that promised the epoch to another candidate denies the majority; nothing changes")
    func claim() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        #expect(await cluster.put(0, "k", "v").status == 200)
        cluster.kill9(0)
        // n3 promised epoch 2 to itself (as a concurrent candidate would have).
        let promised = await cluster.request(2, "POST", "/v1/admin/claim", body: #"{"epoch":2,"candidate":"n3"}"#)
        #expect(promised.status == 200, "\(promised.text)")
        let again = await cluster.request(2, "POST", "/v1/admin/claim", body: #"{"epoch":2,"candidate":"n2"}"#)
        #expect(again.status == 409 && again.json?["rule"]?.stringValue == "PROMOTE-CLAIM-1", "\(again.text)")

        let reply = await cluster.promote(1, kind: "failover")
        #expect(reply.json?["outcome"]?.stringValue == "failed", "\(reply.text)")
        #expect(reply.json?["message"]?.stringValue?.contains("PROMOTE-CLAIM-1") == true, "\(reply.text)")
        #expect(await cluster.role(1)?.role == "replica")
        #expect(await cluster.role(1)?.epoch == 1)
        #expect(cluster.journal(1).contains("\"promotion_failed\""))
        // n3 releases its own promise (its attempt "failed"); n2's request then passes.
        _ = await cluster.request(2, "POST", "/v1/admin/release", body: #"{"epoch":2,"candidate":"n3"}"#)
        let retry = await cluster.promote(1, kind: "failover")
        #expect(retry.json?["outcome"]?.stringValue == "promoted", "\(retry.text)")
    }

    @Test("PROMOTE-FENCE-1 and PROMOTE-FOLLOW-1: fencing a replica, following an old epoch")
    func fenceAndFollow() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let fence = await cluster.request(1, "POST", "/v1/admin/fence", body: #"{"epoch":1,"to_epoch":2,"candidate":"n3"}"#)
        #expect(fence.status == 409 && fence.json?["rule"]?.stringValue == "PROMOTE-FENCE-1", "\(fence.text)")
        #expect(await cluster.put(0, "still", "writable").status == 200)

        #expect(await cluster.promote(1, kind: "switchover").json?["outcome"]?.stringValue == "promoted")
        let old = await cluster.request(2, "POST", "/v1/admin/follow",
                                        body: #"{"primary":"n1","epoch":1,"history":[{"epoch":1,"primary":"n1","start_lsn":1}]}"#)
        #expect(old.status == 409 && old.json?["rule"]?.stringValue == "PROMOTE-FOLLOW-1", "\(old.text)")
        #expect(await cluster.role(2).map { $0.epoch } == 2)
        let metrics = await cluster.request(2, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotion_refusals_total{rule=\"PROMOTE-FOLLOW-1\"} 1"))
    }
}
