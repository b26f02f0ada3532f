// PromotionProcessTests.swift — live promotion on real processes on 127.0.0.1: switchover,
// failover under sync writes, a crash of the candidate at each step, two operators at once,
// and offline replay of every recorded decision. Quick by default; AERODB_FAILOVER_LONG=1
// runs more rounds and every crash point; AERODB_FAILOVER_SEED replays a run (docs/reliability.md).
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("Live promotion (real processes)", .serialized)
struct PromotionProcessTests {
    @Test("switchover: dry run digest, PROMOTE-DIGEST-1 on a stale digest, promotion, re-pointing, decisions replay offline")
    func switchover() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        for i in 0..<20 { #expect(await cluster.put(0, "k\(i)", "v\(i)").status == 200) }

        let dry = await cluster.promote(1, kind: "switchover", dryRun: true)
        #expect(dry.status == 200, "\(dry.text)")
        #expect(dry.json?["outcome"]?.stringValue == "allowed")
        let digest = try #require(dry.json?["facts_digest"]?.stringValue)

        // The digest of another decision (a failover dry run, refused) is not this one's:
        // PROMOTE-DIGEST-1 names what differs.
        let other = try #require(await cluster.promote(1, kind: "failover", dryRun: true).json?["facts_digest"]?.stringValue)
        let stale = await cluster.promote(1, kind: "switchover", expectDigest: other)
        #expect(stale.status == 409)
        #expect(stale.json?["rule"]?.stringValue == "PROMOTE-DIGEST-1")
        #expect(stale.json?["message"]?.stringValue?.contains(#"request.kind: "failover" -> "switchover""#) == true, "\(stale.text)")
        #expect(await cluster.role(0)?.role == "primary", "a refused promotion changes nothing")

        // A write moves every position, not what the decision depended on: the digest holds.
        #expect(await cluster.put(0, "moved", "on").status == 200)
        let done = await cluster.promote(1, kind: "switchover", expectDigest: digest)
        #expect(done.status == 200, "\(done.text)")
        #expect(done.json?["outcome"]?.stringValue == "promoted")
        #expect(done.json?["epoch"]?.integerValue == 2)
        #expect(done.json?["repointed"] == .array([.string("n1"), .string("n3")]))
        // Verified under the new epoch's durability: sync_replicas [n2, n3] less n2 is {n3}.
        #expect(done.json?["verified_write"]?.stringValue?.contains("was acknowledged under ANY 1 (n3)") == true, "\(done.text)")
        #expect(done.json?["durability"] == .object(["quorum": .integer(1), "set": .array([.string("n3")])]))

        // The history shows what happened, beside the engine's decision (issue 17).
        let history = try #require(await cluster.request(1, "GET", "/v1/admin/decisions").json?["decisions"]?.arrayValue)
        let summaries = history.map { "\($0["allowed"]?.boolValue == true ? "allowed" : "refused") \($0["outcome"]?["summary"]?.stringValue ?? "none")" }
        #expect(summaries == ["allowed promoted", "allowed refused (PROMOTE-DIGEST-1)", "refused dry run: refused", "allowed dry run: allowed"], "\(summaries)")
        let listed = try RemoteCommandTests.aerodb(["decisions", "list", "--addr", "127.0.0.1:\(cluster.http[1])"])
        let lines = listed.stdout.split(separator: "\n")
        #expect(lines.first?.contains("DECISION") == true && lines.first?.contains("OUTCOME") == true, "\(listed.stdout)")
        #expect(lines.count == 5 && lines[2].contains("  allowed  ") && lines[2].contains("  refused (PROMOTE-DIGEST-1)"), "\(listed.stdout)")
        // eval of the promoted decision's record re-decides it and says what was recorded.
        let recordID = try #require(history.first?["id"]?.stringValue)
        let record = await cluster.request(1, "GET", "/v1/admin/decisions/\(recordID)").text
        let recordPath = cluster.root + "/record.json"
        try record.write(toFile: recordPath, atomically: true, encoding: .utf8)
        let eval = try EveryCommandExitCodeTests.run("aerodb-policy", ["eval", "--facts", recordPath, "--policy", cluster.policyDir])
        #expect(eval.stdout.contains("recorded (decision \(recordID)): allowed, outcome: promoted"), "\(eval.stdout) \(eval.stderr)")
        #expect(eval.stdout.contains("this run: the same decision (facts digest \(digest))"), "\(eval.stdout)")

        let write = await cluster.put(1, "after", "switchover")
        #expect(write.status == 200)
        #expect(write.json?["epoch"]?.integerValue == 2)
        let old = await cluster.put(0, "old", "primary")
        #expect(old.status == 409, "the old primary must refuse writes: \(old.text)")
        #expect(old.json?["error"]?["code"]?.stringValue == "REPL-WRITE-ON-REPLICA")
        // Every write acknowledged before is on the new primary and, through it, on n1 and n3.
        let lsn = try #require(write.json?["lsn"]?.integerValue)
        for node in 0..<3 {
            for i in 0..<20 {
                let read = await cluster.request(node, "GET", "/v1/kv/k\(i)?min_lsn=\(lsn)")
                #expect(read.status == 200 && read.text == "v\(i)", "n\(node + 1) k\(i): \(read.status) \(read.text)")
            }
        }
        let status = try #require(await cluster.request(0, "GET", "/v1/status").json)
        #expect(status["epoch_history"]?.arrayValue?.count == 2)
        #expect(cluster.journal(1).contains("\"promotion_promoted\""))
        #expect(cluster.journal(0).contains("\"fenced\""))
        let metrics = await cluster.request(1, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotions_total{outcome=\"promoted\"} 1"))

        try await replayEveryDecision(cluster, node: 1, expected: 4)
    }

    @Test("failover under continuous sync writes after kill -9 of the primary: no acknowledged write lost, one writer per epoch, old primary refused")
    func failoverUnderWrites() async throws {
        let rounds = failoverLongMode ? 10 : 1
        let seed = failoverSeed("failoverUnderWrites")
        var random = SeededRandom(seed: seed)
        for round in 0..<rounds {
            let delayMs = Int.random(in: 100...400, using: &random)
            let writers = Int.random(in: 2...4, using: &random)
            try await failoverRound(round: round, delayMs: delayMs, writers: writers)
        }
    }

    func failoverRound(round: Int, delayMs: Int, writers: Int) async throws {
        let cluster = try PromoCluster(syncTimeoutMs: 1_000)
        defer { cluster.stopAll() }
        try cluster.startAll()
        let acks = AckLog()
        let target = NIOTarget(0)
        let stop = NIOTarget(0)
        let tasks = (0..<writers).map { writer in
            Task {
                var i = 0
                while stop.value == 0 {
                    let node = target.value
                    let key = "w\(writer)-\(i)"
                    let reply = await cluster.put(node, key, "r\(round)-\(key)")
                    if reply.status == 200, let epoch = reply.json?["epoch"]?.integerValue, let lsn = reply.json?["lsn"]?.integerValue {
                        acks.add(.init(key: key, value: "r\(round)-\(key)", node: node, epoch: UInt64(epoch), lsn: UInt64(lsn)))
                    } else if reply.status != 0 {
                        // Every refusal is explained: a rule id and a message.
                        #expect(reply.json?["error"]?["code"]?.stringValue != nil, "unexplained answer: \(reply.status) \(reply.text)")
                    }
                    i += 1
                    if reply.status != 200 { try? await Task.sleep(for: .milliseconds(5)) }
                }
            }
        }
        // A round that ends early (a thrown error) still stops its writers.
        defer { stop.value = 1 }
        try await Task.sleep(for: .milliseconds(delayMs))
        cluster.kill9(0)
        // The operator asks n2 (or n3, when DUR-2 names it).
        let (candidate, promoted) = await cluster.failOverAsOperator()
        let other = candidate == 1 ? 2 : 1
        #expect(promoted.json?["outcome"]?.stringValue == "promoted", "\(promoted.text)")
        #expect(promoted.json?["unreachable"] == .array([.string("n1")]))
        #expect(promoted.json?["repointed"] == .array([.string("n\(other + 1)")]))
        target.value = candidate
        try await Task.sleep(for: .milliseconds(200))

        // The old primary comes back: it must not acknowledge anything, and it may not rejoin
        // silently once it wrote past the branch point.
        try cluster.start(0)
        let late = await cluster.put(0, "late", "write")
        #expect(late.status != 200, "the old primary acknowledged a write after epoch 2 existed: \(late.text)")
        stop.value = 1
        for task in tasks { await task.value }

        let byEpoch = acks.writersByEpoch()
        for (epoch, nodes) in byEpoch { #expect(nodes.count == 1, "epoch \(epoch) had writers \(nodes)") }
        #expect(byEpoch[1] == [0] || byEpoch[1] == nil)
        #expect(byEpoch[2] == [candidate])
        // No acknowledged write lost: every one is readable on the new primary and the other replica.
        let maxLSN = acks.all.map(\.lsn).max() ?? 0
        for ack in acks.all {
            for node in [1, 2] {
                let read = await cluster.request(node, "GET", "/v1/kv/\(ack.key)?min_lsn=\(maxLSN)")
                #expect(read.status == 200 && read.text == ack.value, "acknowledged \(ack.key) (epoch \(ack.epoch)) missing on n\(node + 1)")
            }
        }
        print("failoverUnderWrites round \(round): \(acks.all.count) acknowledged writes checked, writers \(writers), kill after \(delayMs) ms")

        // Rejoin: the old primary's WAL is a prefix (it follows) or it diverged (refused, names reseed).
        let primaryStatus = try #require(await cluster.request(candidate, "GET", "/v1/status").json)
        let body = JSONValue.object(["primary": .string("n\(candidate + 1)"), "epoch": .integer(2), "history": primaryStatus["epoch_history"] ?? .null])
        let rejoin = await cluster.request(0, "POST", "/v1/admin/follow", body: body.canonicalJSON)
        if rejoin.status == 200 {
            #expect(await cluster.role(0)?.role == "replica")
        } else {
            #expect(rejoin.json?["rule"]?.stringValue == "PROMOTE-DIVERGED-1", "\(rejoin.text)")
            #expect(rejoin.json?["message"]?.stringValue?.contains("aerodb reseed") == true)
        }
        #expect(await cluster.put(0, "after-rejoin", "x").status != 200)
        try await replayEveryDecision(cluster, node: 1, expected: 1)
        if candidate == 2 { try await replayEveryDecision(cluster, node: 2, expected: 1) }
    }

    @Test("a candidate killed at each promotion step leaves the old authority or the new one, and says so on restart")
    func crashAtEachStep() async throws {
        let points = failoverLongMode
            ? ["after-decision", "after-detach", "after-claim", "after-authority", "after-primary-start", "after-repoint"]
            : ["after-claim", "after-authority"]
        for point in points {
            let cluster = try PromoCluster(syncTimeoutMs: 1_000)
            defer { cluster.stopAll() }
            try cluster.startAll()
            for i in 0..<10 { #expect(await cluster.put(0, "k\(i)", "v\(i)").status == 200) }
            cluster.kill9(0)
            cluster.kill9(1)
            let candidate = try cluster.start(1, environment: ["AERODB_FAULT_PROMOTE_CRASH": point])
            let reply = await cluster.promote(1, kind: "failover")
            #expect(reply.status == 0, "\(point): the candidate answered \(reply.text)")
            #expect(candidate.waitExit(timeoutMs: 10_000) == 86, "\(point): no injected crash")
            cluster.nodes[1] = nil
            try cluster.start(1)
            let after = try #require(await cluster.role(1))
            let newAuthority = ["after-authority", "after-primary-start", "after-repoint"].contains(point)
            if newAuthority {
                #expect(after.role == "primary" && after.epoch == 2, "\(point): \(after)")
            } else {
                #expect(after.role == "replica" && after.epoch == 1, "\(point): \(after)")
            }
            if point != "after-decision" {
                #expect(cluster.journal(1).contains("\"promotion_interrupted\""), "\(point): the restart did not report the interrupted promotion")
            }
            if !newAuthority {
                // The operator asks again; the same candidate's promise is still valid.
                let again = await cluster.promote(1, kind: "failover")
                #expect(again.json?["outcome"]?.stringValue == "promoted", "\(point): \(again.text)")
            } else if point != "after-repoint" {
                // n3 was not re-pointed: the operator points it at the new primary.
                let status = try #require(await cluster.request(1, "GET", "/v1/status").json)
                let body = JSONValue.object(["primary": .string("n2"), "epoch": .integer(2), "history": status["epoch_history"] ?? .null])
                #expect(await cluster.request(2, "POST", "/v1/admin/follow", body: body.canonicalJSON).status == 200)
            }
            let write = await cluster.put(1, "after-crash", point)
            #expect(write.status == 200 && write.json?["epoch"]?.integerValue == 2, "\(point): \(write.text)")
            for i in 0..<10 {
                let read = await cluster.request(1, "GET", "/v1/kv/k\(i)")
                #expect(read.text == "v\(i)", "\(point): k\(i) lost")
            }
        }
    }

    @Test("two operators promote two different replicas at once: at most one wins, never two writers in one epoch")
    func twoOperators() async throws {
        let rounds = failoverLongMode ? 5 : 1
        for _ in 0..<rounds {
            let cluster = try PromoCluster(syncTimeoutMs: 1_000)
            defer { cluster.stopAll() }
            try cluster.startAll()
            #expect(await cluster.put(0, "k", "v").status == 200)
            cluster.kill9(0)
            async let first = cluster.promote(1, kind: "failover")
            async let second = cluster.promote(2, kind: "failover")
            let replies = await [first, second]
            // A winner whose new set's one member (the other candidate, busy with its own attempt)
            // could not be re-pointed is promoted without service (REPL-QUORUM-1): it still won.
            let won = ["promoted", "promoted_without_service"]
            let winners = replies.filter { won.contains($0.json?["outcome"]?.stringValue ?? "") }
            #expect(winners.count <= 1, "\(replies.map(\.text))")
            for reply in replies where !won.contains(reply.json?["outcome"]?.stringValue ?? "") {
                #expect(reply.json?["rule"]?.stringValue != nil || reply.json?["decision"]?["reasons"] != nil, "unexplained: \(reply.text)")
            }
            var primaries = 0
            for node in [1, 2] {
                if let role = await cluster.role(node), role.role == "primary", role.epoch == 2 { primaries += 1 }
            }
            #expect(primaries == winners.count)
            #expect(primaries <= 1)
        }
    }
}

/// A shared integer for the writer tasks (which node to write to, when to stop).
final class NIOTarget: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Int
    init(_ value: Int) { current = value }
    var value: Int {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }

    /// Atomic increment (several writer tasks count into one).
    func add(_ amount: Int) { lock.withLock { current += amount } }
}
