// PromotionRefusalTests.swift — trips the PROMOTE-* rules of the live promotion path on real
// processes: PROMOTE-BUSY-1, PROMOTE-CLAIM-1, PROMOTE-FENCE-1, PROMOTE-FOLLOW-1, and with
// AERODB_FAULT_PROMOTE_FAIL on the candidate PROMOTE-STEP-1, PROMOTE-CATCHUP-1 and
// PROMOTE-VERIFY-1 (PROMOTE-DIGEST-1 and PROMOTE-DIVERGED-1 are tripped in PromotionProcessTests).
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
        #expect(reply.json?["rule"]?.stringValue == "PROMOTE-CLAIM-1", "\(reply.text)")
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
        // The primary is fenced only for the successor of its epoch (U2 asks that candidate).
        let skipping = await cluster.request(0, "POST", "/v1/admin/fence", body: #"{"epoch":1,"to_epoch":3,"candidate":"n3"}"#)
        #expect(skipping.status == 409 && skipping.json?["rule"]?.stringValue == "PROMOTE-FENCE-1", "\(skipping.text)")
        #expect(await cluster.put(0, "still", "writable after a fence for a later epoch").status == 200)
        // A client shows n1 a newer epoch: it stops writes (F4), and an unfence cannot undo that.
        let stale = await cluster.put(0, "from-the-future", "x", headers: ["X-AeroDB-Epoch": "7"])
        #expect(stale.status != 200, "\(stale.text)")
        let unfence = await cluster.request(0, "POST", "/v1/admin/unfence", body: #"{"epoch":1}"#)
        #expect(unfence.status == 409 && unfence.json?["rule"]?.stringValue == "PROMOTE-UNFENCE-1", "\(unfence.text)")
        #expect(PromoCluster.errorCode(await cluster.put(0, "after", "unfence")) == "REPL-STALE-EPOCH")

        #expect(await cluster.promote(1, kind: "switchover").json?["outcome"]?.stringValue == "promoted")
        let old = await cluster.request(2, "POST", "/v1/admin/follow",
                                        body: #"{"primary":"n1","epoch":1,"history":[{"epoch":1,"primary":"n1","start_lsn":1}]}"#)
        #expect(old.status == 409 && old.json?["rule"]?.stringValue == "PROMOTE-FOLLOW-1", "\(old.text)")
        #expect(old.json?["message"]?.stringValue?.contains("n3 is at epoch 2, newer than n1's epoch 1: a node never follows the primary of an older epoch") == true, "\(old.text)")
        // Asked to follow itself (a rejoin given its own address as the primary's).
        let itself = await cluster.request(1, "POST", "/v1/admin/follow",
                                           body: #"{"primary":"n2","epoch":2,"history":[{"epoch":1,"primary":"n1","start_lsn":1},{"epoch":2,"primary":"n2","start_lsn":2}]}"#)
        #expect(itself.json?["rule"]?.stringValue == "PROMOTE-FOLLOW-1" && itself.json?["message"]?.stringValue?.contains("n2 cannot follow itself") == true, "\(itself.text)")
        #expect(await cluster.role(2).map { $0.epoch } == 2)
        let metrics = await cluster.request(2, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotion_refusals_total{rule=\"PROMOTE-FOLLOW-1\"} 1"), "n3 refused once")
    }

    @Test("PROMOTE-UNFENCE-1 (U6): a candidate's late unfence of an earlier attempt does not lift the fence of its next one")
    func aLateGaveUpLiftsOnlyItsOwnAttempt() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        // Attempt B of n2 fences n1 (as the coordinator does, naming its decision id) ...
        let fence = await cluster.request(0, "POST", "/v1/admin/fence", body: #"{"epoch":1,"to_epoch":2,"candidate":"n2","attempt":"B"}"#)
        #expect(fence.status == 200, "\(fence.text)")
        #expect(await cluster.put(0, "fenced", "x").status != 200)
        // ... when the gave-up unfence of n2's earlier attempt A arrives late: refused, still fenced.
        let late = await cluster.request(0, "POST", "/v1/admin/unfence",
                                         body: #"{"epoch":1,"candidate":"n2","candidate_gave_up":true,"attempt":"A"}"#)
        #expect(late.status == 409 && late.json?["rule"]?.stringValue == "PROMOTE-UNFENCE-1", "\(late.text)")
        let unnamed = await cluster.request(0, "POST", "/v1/admin/unfence", body: #"{"epoch":1,"candidate":"n2","candidate_gave_up":true}"#)
        #expect(unnamed.status == 409 && unnamed.json?["rule"]?.stringValue == "PROMOTE-UNFENCE-1", "\(unnamed.text)")
        #expect(await cluster.put(0, "still-fenced", "x").status != 200)
        // Attempt B's own unfence lifts it (and withdraws the promise of epoch 2 to n2).
        let own = await cluster.request(0, "POST", "/v1/admin/unfence",
                                        body: #"{"epoch":1,"candidate":"n2","candidate_gave_up":true,"attempt":"B"}"#)
        #expect(own.status == 200 && own.json?["was_fenced"] == .bool(true), "\(own.text)")
        #expect(await cluster.put(0, "writable", "again").status == 200)
        // Once lifted, a repeat of it finds no fence of that attempt.
        let again = await cluster.request(0, "POST", "/v1/admin/unfence",
                                          body: #"{"epoch":1,"candidate":"n2","candidate_gave_up":true,"attempt":"B"}"#)
        #expect(again.status == 409 && again.json?["rule"]?.stringValue == "PROMOTE-UNFENCE-1", "\(again.text)")
    }

    /// The cluster with n2 (the candidate) started with `AERODB_FAULT_PROMOTE_FAIL=step`.
    func clusterFailing(_ step: String) throws -> PromoCluster {
        let cluster = try PromoCluster()
        try cluster.start(0)
        try cluster.start(1, environment: ["AERODB_FAULT_PROMOTE_FAIL": step])
        try cluster.start(2)
        return cluster
    }

    @Test("PROMOTE-STEP-1: a switchover whose fence step fails fails, names the step, and changes nothing")
    func stepFailed() async throws {
        let cluster = try clusterFailing("fence")
        defer { cluster.stopAll() }
        #expect(await cluster.put(0, "k", "v").status == 200)
        let reply = await cluster.promote(1, kind: "switchover")
        #expect(reply.json?["outcome"]?.stringValue == "failed", "\(reply.text)")
        #expect(reply.json?["rule"]?.stringValue == "PROMOTE-STEP-1", "\(reply.text)")
        let message = try #require(reply.json?["message"]?.stringValue)
        #expect(message.hasPrefix("step ") && message.contains("n1 was not fenced"), "\(message)")
        #expect(await cluster.role(0).map { "\($0.role) \($0.epoch)" } == "primary 1")
        #expect(await cluster.role(1).map { "\($0.role) \($0.epoch)" } == "replica 1")
        #expect(await cluster.put(0, "still", "writable").status == 200)
        #expect(cluster.journal(1).contains("\"promotion_failed\""))
        #expect(!cluster.journal(0).contains("\"fenced\""))
        let metrics = await cluster.request(1, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotions_total{outcome=\"failed\"} 1"), "\(metrics)")
    }

    @Test("PROMOTE-CATCHUP-1: a switchover whose candidate does not catch up in time lifts the fence and fails")
    func catchUpTimeout() async throws {
        let cluster = try clusterFailing("catch-up")
        defer { cluster.stopAll() }
        for i in 0..<5 { #expect(await cluster.put(0, "k\(i)", "v\(i)").status == 200) }
        let reply = await cluster.promote(1, kind: "switchover")
        #expect(reply.json?["outcome"]?.stringValue == "failed", "\(reply.text)")
        #expect(reply.json?["rule"]?.stringValue == "PROMOTE-CATCHUP-1", "\(reply.text)")
        #expect(reply.json?["message"]?.stringValue?.contains("switchover_catch_up_timeout_ms 2000") == true, "\(reply.text)")
        #expect(reply.json?["message"]?.stringValue?.contains("the fence of n1 was lifted") == true, "\(reply.text)")
        // The old primary was fenced, then the fence was lifted: it takes writes again at epoch 1.
        let journal = cluster.journal(0)
        #expect(journal.contains("\"fenced\"") && journal.contains("\"unfenced\""), "\(journal)")
        #expect(await cluster.role(0).map { "\($0.role) \($0.epoch)" } == "primary 1")
        let write = await cluster.put(0, "after", "catch-up")
        #expect(write.status == 200 && write.json?["epoch"]?.integerValue == 1, "\(write.text)")
        #expect(await cluster.role(1).map { "\($0.role) \($0.epoch)" } == "replica 1")
        #expect(cluster.journal(1).contains("\"promotion_failed\""))
    }

    @Test("PROMOTE-VERIFY-1: the authority is committed but the new epoch's write is not verified: promoted without service, and says so")
    func verifyFailed() async throws {
        let cluster = try clusterFailing("verify")
        defer { cluster.stopAll() }
        #expect(await cluster.put(0, "k", "v").status == 200)
        let reply = await cluster.promote(1, kind: "switchover")
        // The authority moved, service is not verified: promoted_without_service, exit 1.
        #expect(reply.json?["outcome"]?.stringValue == "promoted_without_service", "\(reply.text)")
        #expect(reply.json?["exit_code"]?.integerValue == 1, "\(reply.text)")
        #expect(reply.json?["rule"]?.stringValue == "PROMOTE-VERIFY-1", "\(reply.text)")
        #expect(reply.json?["epoch"]?.integerValue == 2, "\(reply.text)")
        #expect(reply.json?["verified_write"] == .null, "\(reply.text)")
        #expect(reply.json?["message"]?.stringValue?.contains("not verified") == true, "\(reply.text)")
        // As docs/failover.md says: the authority is committed; the operator inspects n2.
        #expect(await cluster.role(1).map { "\($0.role) \($0.epoch)" } == "primary 2")
        #expect(await cluster.put(0, "old", "primary").status == 409)
    }
}
