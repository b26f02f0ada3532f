// UnfenceCommandTests.swift — `aerodb unfence` on real processes: a switchover whose candidate
// crashed right after fencing the primary leaves the primary fenced; the command lifts the
// fence (exit 0), refuses on a node that is not the primary of that epoch (exit 1,
// PROMOTE-FENCE-1), and gets no answer from a dead address (exit 2). Afterwards the old
// primary takes writes again and a new switchover is possible.
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("aerodb unfence (real processes)", .serialized)
struct UnfenceCommandTests {
    @Test("unfence after a switchover whose candidate crashed after the fence: exit 0, 1 and 2, writes resume, promotion possible again")
    func unfenceAfterCrashedSwitchover() async throws {
        let cluster = try PromoCluster(syncTimeoutMs: 1_000)
        defer { cluster.stopAll() }
        try cluster.start(0)
        let candidate = try cluster.start(1, environment: ["AERODB_FAULT_PROMOTE_CRASH": "after-fence"])
        try cluster.start(2)
        #expect(await cluster.put(0, "k", "v").status == 200)

        let reply = await cluster.promote(1, kind: "switchover")
        #expect(reply.status == 0, "the candidate answered: \(reply.text)")
        #expect(candidate.waitExit(timeoutMs: 10_000) == 86, "no injected crash")
        cluster.nodes[1] = nil
        let fenced = await cluster.put(0, "while", "fenced")
        #expect(PromoCluster.errorCode(fenced) == "REPL-FENCED", "\(fenced.text)")

        // Exit 1: n3 is a replica, there is no fence of epoch 1 to lift on it.
        let refused = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[2])", "--epoch", "1"])
        #expect(refused.status == 1, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stdout.hasPrefix("refused: PROMOTE-FENCE-1\nn3 is replica of epoch 1"), "\(refused.stdout)")

        // Exit 0: the old primary's fence is lifted, and its promise of epoch 2 to n2 withdrawn.
        let lifted = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])"])
        #expect(lifted.status == 0, "\(lifted.stdout) \(lifted.stderr)")
        #expect(lifted.stdout == "n1: fence of epoch 1 lifted; it takes writes again\nreleased its promise of epoch 2 to n2\n", "\(lifted.stdout)")
        #expect(cluster.journal(0).contains("\"unfenced\""))

        // Again, as JSON: nothing was fenced any more; still exit 0.
        let again = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])", "--format", "json"])
        #expect(again.status == 0, "\(again.stdout) \(again.stderr)")
        let json = try JSONParser.parse(again.stdout)
        #expect(json["was_fenced"] == .bool(false) && json["fenced"] == .bool(false) && json["released_promise"] == .null, "\(again.stdout)")

        // Exit 2: no answer.
        let dead = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[1])", "--timeout-ms", "2000"])
        #expect(dead.status == 2, "\(dead.stdout) \(dead.stderr)")
        #expect(dead.stderr.contains("no answer from"), "\(dead.stderr)")

        // The candidate restarts with the old authority (it crashed before any change); the
        // old primary takes writes at epoch 1 again, and a new switchover is allowed.
        try cluster.start(1)
        #expect(await cluster.role(1).map { "\($0.role) \($0.epoch)" } == "replica 1")
        let write = await cluster.put(0, "after", "unfence")
        #expect(write.status == 200 && write.json?["epoch"]?.integerValue == 1, "\(write.text)")
        let promoted = await cluster.promote(1, kind: "switchover")
        #expect(promoted.json?["outcome"]?.stringValue == "promoted", "\(promoted.text)")
        for key in ["k", "after"] {
            #expect(await cluster.request(1, "GET", "/v1/kv/\(key)").status == 200, "\(key) lost")
        }
    }
}
