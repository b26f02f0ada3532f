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
        // The refusal names the attempt and what lifts the fence; status shows fence and promise.
        let fencedMessage = fenced.json?["error"]?["message"]?.stringValue ?? ""
        #expect(fencedMessage.contains("n1 is fenced at epoch 1 for n2's switchover to epoch 2 (attempt n2-"), "\(fencedMessage)")
        #expect(fencedMessage.contains("`aerodb unfence --addr 127.0.0.1:\(cluster.http[0])` lifts the fence (it asks n2 first)"), "\(fencedMessage)")
        let fencedStatus = await cluster.request(0, "GET", "/v1/status").json
        #expect(fencedStatus?["fence"]?["candidate"] == .string("n2") && fencedStatus?["fence"]?["to_epoch"] == .integer(2), "\(String(describing: fencedStatus?["fence"]))")
        #expect(fencedStatus?["fence"]?["attempt"]?.stringValue?.hasPrefix("n2-") == true)
        #expect(fencedStatus?["epoch_promise"] == .object(["epoch": .integer(2), "candidate": .string("n2")]))
        let summary = try RemoteCommandTests.aerodb(["status", "--addr", "127.0.0.1:\(cluster.http[0])", "--format", "text"])
        #expect(summary.status == 0 && summary.stdout.contains("fence:       FENCED at epoch 1 for n2's switchover to epoch 2, attempt n2-"), "\(summary.stdout)")
        #expect(summary.stdout.contains("promise:     epoch 2 promised to n2"), "\(summary.stdout)")

        // Exit 1: n3 is a replica, there is no fence of epoch 1 to lift on it.
        let refused = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[2])", "--epoch", "1"])
        #expect(refused.status == 1, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stdout.hasPrefix("refused: PROMOTE-FENCE-1\nn3 is a replica (epoch 1), not a fenced primary: it has no fence to lift"), "\(refused.stdout)")

        // Exit 1: n1 promised epoch 2 to n2, which gives no answer: it may have committed it.
        let unproven = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])"])
        #expect(unproven.status == 1, "\(unproven.stdout) \(unproven.stderr)")
        #expect(unproven.stdout.hasPrefix("refused: PROMOTE-UNFENCE-1\nn1 stays fenced at epoch 1: it promised epoch 2 to n2"), "\(unproven.stdout)")
        // n2 is dead: the connection is refused at once, and the message says so (not a timeout).
        #expect(unproven.stdout.contains("n2 gave no promotion state at 127.0.0.1:\(cluster.http[1])"), "\(unproven.stdout)")
        #expect(!unproven.stdout.contains("no answer within"), "\(unproven.stdout)")
        #expect(PromoCluster.errorCode(await cluster.put(0, "still", "fenced")) == "REPL-FENCED")

        // Exit 0: the candidate restarted with the old authority (it crashed before any change);
        // the fence is lifted and the promise of epoch 2 to n2 withdrawn.
        try cluster.start(1)
        #expect(await cluster.role(1).map { "\($0.role) \($0.epoch)" } == "replica 1")
        let lifted = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])"])
        #expect(lifted.status == 0, "\(lifted.stdout) \(lifted.stderr)")
        #expect(lifted.stdout == "n1: fence of epoch 1 lifted; it takes writes again\nreleased its promise of epoch 2 to n2\n", "\(lifted.stdout)")
        #expect(cluster.journal(0).contains("\"unfenced\""))
        let liftedStatus = await cluster.request(0, "GET", "/v1/status").json
        #expect(liftedStatus?["fence"] == .null && liftedStatus?["epoch_promise"] == .null, "\(String(describing: liftedStatus))")

        // Again, as JSON: nothing was fenced any more; still exit 0.
        let again = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])", "--format", "json"])
        #expect(again.status == 0, "\(again.stdout) \(again.stderr)")
        let json = try JSONParser.parse(again.stdout)
        #expect(json["was_fenced"] == .bool(false) && json["fenced"] == .bool(false) && json["released_promise"] == .null, "\(again.stdout)")

        // Exit 2: no answer.
        let dead = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(try freeLoopbackPort())", "--timeout-ms", "2000"])
        #expect(dead.status == 2, "\(dead.stdout) \(dead.stderr)")
        #expect(dead.stderr.contains("no answer from"), "\(dead.stderr)")

        // The old primary takes writes at epoch 1 again, and a new switchover is allowed.
        let write = await cluster.put(0, "after", "unfence")
        #expect(write.status == 200 && write.json?["epoch"]?.integerValue == 1, "\(write.text)")
        let promoted = await cluster.promote(1, kind: "switchover")
        #expect(promoted.json?["outcome"]?.stringValue == "promoted", "\(promoted.text)")
        for key in ["k", "after"] {
            #expect(await cluster.request(1, "GET", "/v1/kv/\(key)").status == 200, "\(key) lost")
        }
    }

    @Test("PROMOTE-UNFENCE-1: a candidate that committed the new epoch keeps the old primary fenced, and it learns the epoch; --candidate-lost overrides a silent one")
    func unfenceRefusedAfterCommit() async throws {
        let cluster = try PromoCluster(syncTimeoutMs: 1_000)
        defer { cluster.stopAll() }
        try cluster.start(0)
        let candidate = try cluster.start(1, environment: ["AERODB_FAULT_PROMOTE_CRASH": "after-authority"])
        try cluster.start(2)
        #expect(await cluster.put(0, "k", "v").status == 200)
        _ = await cluster.promote(1, kind: "switchover")
        #expect(candidate.waitExit(timeoutMs: 10_000) == 86, "no injected crash")
        cluster.nodes[1] = nil

        // Silent candidate: refused; the operator asserts it is lost for good: lifted.
        let lost = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])", "--candidate-lost", "--format", "json"])
        #expect(lost.status == 0, "\(lost.stdout) \(lost.stderr)")
        #expect(try JSONParser.parse(lost.stdout)["was_fenced"] == .bool(true))
        #expect(cluster.journal(0).contains("\"candidate_lost\":true"))

        // That assertion was wrong here: n2 committed epoch 2 before it crashed. Once it is back,
        // n1 learns of epoch 2 from any request carrying it and refuses writes for good.
        try cluster.start(1)
        #expect(await cluster.role(1).map { "\($0.role) \($0.epoch)" } == "primary 2")
        let fence = await cluster.request(0, "POST", "/v1/admin/fence", body: #"{"epoch":1,"to_epoch":2,"candidate":"n2"}"#)
        #expect(fence.status == 200, "\(fence.text)")
        let refused = try RemoteCommandTests.aerodb(["unfence", "--addr", "127.0.0.1:\(cluster.http[0])", "--candidate", "n2"])
        #expect(refused.status == 1, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stdout.hasPrefix("refused: PROMOTE-UNFENCE-1\nn1 stays fenced at epoch 1: n2 is primary of epoch 2"), "\(refused.stdout)")
        #expect(PromoCluster.errorCode(await cluster.put(0, "old", "primary")) == "REPL-STALE-EPOCH")
        let metrics = await cluster.request(0, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotion_refusals_total{rule=\"PROMOTE-UNFENCE-1\"} 1"), "\(metrics)")
    }
}
