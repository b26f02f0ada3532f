// UnfenceDuringPromotionTests.swift — guards U2 against a candidate whose switchover is still
// running: it answers its status at the old epoch E, but it holds the fenced primary's promise
// and commits E+1 as soon as it caught up. Lifting the fence in that window would leave the old
// primary taking writes at E while a primary of E+1 exists. The old primary must stay fenced
// (PROMOTE-UNFENCE-1) until the candidate's attempt ended, and an unfence that names another
// candidate than the one promised E+1 is refused (it would ask the wrong node).
//
// The window is made wide, not timed: n1's replication link to n2 and n3 (a FaultProxy) is cut,
// so the candidate n2 waits for the fenced primary's final LSN (catch-up bound raised to 20 s)
// until the test heals the link.
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("Unfence while the candidate's promotion runs (real processes)", .serialized)
struct UnfenceDuringPromotionTests {
    /// Bound on waiting for the candidate to fence n1.
    static let fenceWaitMs = 10_000
    static let pollMs = 20

    @Test("PROMOTE-UNFENCE-1: a candidate that is still catching up after the fence keeps the old primary fenced; its promotion then commits with no writer left at epoch 1")
    func unfenceRefusedWhileCandidatePromotes() async throws {
        let cluster = try PromoCluster(syncTimeoutMs: 500, proxyPrimary: true)
        defer { cluster.stopAll() }
        try cluster.editConfig(1, "timeouts.switchover_catch_up_timeout_ms", .integer(20_000))
        try cluster.startAll()
        #expect(await cluster.put(0, "k", "v").status == 200)

        // n2 and n3 stop receiving n1's records; n1 writes one more (durable on n1 only).
        // A blackhole keeps the sessions open (a refused connection would end them, and with no
        // quorum connected n1 would refuse the write before making it: REPL-QUORUM-1).
        cluster.primaryProxies[1].partition(.blackhole)
        #expect(PromoCluster.errorCode(await cluster.put(0, "lag", "x")) == "REPL-SYNC-TIMEOUT")

        async let promoted = cluster.promote(1, kind: "switchover")
        _ = await Deadline.waitUntil(timeoutMs: Self.fenceWaitMs, pollMs: Self.pollMs) { cluster.journal(0).contains("\"fenced\"") }
        try #require(cluster.journal(0).contains("\"fenced\""), "n2 did not fence n1")

        // Naming a candidate other than the one n1 promised epoch 2 to asks the wrong node.
        let wrong = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])", "--candidate", "n3"])
        #expect(wrong.status == 1, "\(wrong.stdout) \(wrong.stderr)")
        #expect(wrong.stdout.hasPrefix("refused: PROMOTE-UNFENCE-1\nn1 stays fenced at epoch 1: it promised epoch 2 to n2, not to n3"), "\(wrong.stdout)")

        // n2 answers at epoch 1 but its attempt runs: the fence stays.
        let unfence = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])"])
        #expect(unfence.status == 1, "\(unfence.stdout) \(unfence.stderr)")
        #expect(unfence.stdout.hasPrefix("refused: PROMOTE-UNFENCE-1\nn1 stays fenced at epoch 1: n2 is running a promotion"), "\(unfence.stdout)")
        #expect(PromoCluster.errorCode(await cluster.put(0, "while", "promoting")) == "REPL-FENCED")

        cluster.primaryProxies[1].heal()
        let reply = await promoted
        #expect(reply.json?["outcome"]?.stringValue == "promoted", "\(reply.text)")
        #expect(!cluster.journal(0).contains("\"unfenced\""), "n1 lifted its fence while n2 promoted itself")
        #expect(await cluster.put(0, "old", "primary").status != 200)
        #expect(await cluster.request(1, "GET", "/v1/kv/lag").status == 200, "the fenced primary's last record is lost")
    }
}
