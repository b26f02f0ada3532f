// FenceNeedsPromiseTests.swift — guards C3 on the fenced primary: a candidate of a switchover
// counts the primary it fenced as one promise of the new epoch without asking it again, so the
// fence must make that promise durably or be refused. A primary whose data dir cannot hold its
// decisions has no claim file open; it must refuse every fence (PROMOTE-CLAIM-1) rather than
// be fenced for two candidates at once (each would count it, and in three nodes two
// candidates would both reach a majority of the same epoch).
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("A fence is a promise (real processes)", .serialized)
struct FenceNeedsPromiseTests {
    @Test("PROMOTE-CLAIM-1: a primary that cannot record promises refuses the fence; a switchover then fails and nothing changes")
    func fenceRefusedWithoutClaimFile() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        #expect(await cluster.put(0, "k", "v").status == 200)
        cluster.kill9(0)
        let decisions = cluster.root + "/n1/decisions"
        try FileManager.default.removeItem(atPath: decisions)
        try Data("not a directory\n".utf8).write(to: URL(fileURLWithPath: decisions))
        try cluster.start(0)

        for candidate in ["n2", "n3"] {
            let fence = await cluster.request(0, "POST", "/v1/admin/fence", body: #"{"epoch":1,"to_epoch":2,"candidate":"\#(candidate)"}"#)
            #expect(fence.status == 409 && fence.json?["rule"]?.stringValue == "PROMOTE-CLAIM-1", "fence for \(candidate): \(fence.text)")
        }
        #expect(await cluster.put(0, "still", "primary").status == 200, "n1 was fenced without a promise")
        let metrics = await cluster.request(0, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotion_refusals_total{rule=\"PROMOTE-CLAIM-1\"} 2"), "\(metrics)")

        let reply = await cluster.promote(1, kind: "switchover")
        #expect(reply.json?["outcome"]?.stringValue == "failed", "\(reply.text)")
        #expect(await cluster.role(0).map { "\($0.role) \($0.epoch)" } == "primary 1")
        #expect(await cluster.role(1).map { "\($0.role) \($0.epoch)" } == "replica 1")
    }
}
