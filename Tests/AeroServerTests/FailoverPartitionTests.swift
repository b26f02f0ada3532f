// FailoverPartitionTests.swift — the primary cut off from its peers by a fault-injecting TCP
// proxy, then a failover, under continuous sync writes from clients that still reach it.
//
// Every address of n1 that n2 and n3 use (its peer port, which they replicate from, and its
// HTTP address, which a candidate gathers facts from and re-points) goes through a FaultProxy
// (PromoCluster(proxyPrimary:)); clients reach n1 directly. A round:
//   1. 2–4 writers put continuously to n1 (sync mode, n2 and n3 sync replicas);
//   2. after a seeded delay the proxies partition n1 (`.refuse` or `.blackhole`, seeded);
//      writers keep writing to n1, which can no longer acknowledge anything;
//   3. the operator fails over to n2 (to n3 when DUR-2 names it); writers move to it;
//   4. writes sent to n1 after the new epoch exists are never acknowledged, partitioned or
//      healed (n1 does not know of epoch 2 until told);
//   5. after the heal a client carrying X-AeroDB-Epoch: 2 tells n1 of the new epoch: from
//      then on n1 refuses writes (REPL-STALE-EPOCH);
//   6. `rejoin`: n1 follows if its WAL is a prefix of the new history, and is refused with
//      PROMOTE-DIVERGED-1 (naming `aerodb reseed`) exactly when it holds records at or past
//      the new epoch's start LSN; a diverged n1 is re-seeded from the new primary and
//      restarted as its replica.
// Checkers (shared with PromotionProcessTests): no acknowledged write lost (each read back on
// every node at the end), one writer per epoch, n1 acknowledges nothing sent after the new
// epoch existed, every refusal carries a rule id, every recorded decision replays offline.
//
// Quick mode (CI): 2 rounds, one per partition mode. AERODB_FAILOVER_LONG=1: 10 rounds; in
// rounds 3-10 the mode is seeded, n1's proxied links get a seeded delay of 0-5 ms per chunk,
// and one round in three is quiet (writers paused over the partition: n1 must then follow).
// AERODB_FAILOVER_SEED=<seed> replays a run (the seed is printed).
import AeroCore
import Foundation
import Testing
import AeroTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("Failover after a network partition of the primary (real processes, fault proxy)", .serialized)
struct FailoverPartitionTests {
    /// One writer's pause after a refused write, so that a refusing node is not spun on.
    static let refusedPauseMs = 5

    @Test("partition the primary from its peers with a fault proxy and fail over, under continuous sync writes")
    func partitionAndFailOver() async throws {
        let rounds = failoverLongMode ? 10 : 2
        let seed = failoverSeed("partitionAndFailOver")
        var random = SeededRandom(seed: seed)
        var totals = Totals()
        for round in 0..<rounds {
            let modes = FaultProxy.Partition.allCases
            let mode = round < modes.count ? modes[(Int(seed % 2) + round) % modes.count] : modes.randomElement(using: &random)!
            var plan = Plan(mode: mode, writers: Int.random(in: 2...4, using: &random),
                            beforePartitionMs: Int.random(in: 100...400, using: &random),
                            partitionedMs: Int.random(in: 0...300, using: &random))
            // Long mode, after the first two rounds: one in three is quiet (see Plan.quiet).
            plan.quiet = round >= modes.count && Int.random(in: 0..<3, using: &random) == 0
            // Long mode, after the first two rounds: n1's links are slow before the cut too.
            plan.linkDelayMs = round >= modes.count ? Int.random(in: 0...5, using: &random) : 0
            try await partitionRound(round: round, plan: plan, totals: &totals)
        }
        print("partitionAndFailOver: seed \(seed), \(rounds) rounds, faults: \(totals.partitions) partitions (\(totals.cut) connections cut, "
            + "\(totals.refused) refused, \(totals.blackholed) black-holed), \(totals.acked) acknowledged writes checked, "
            + "\(totals.refusals) refused writes (all explained), diverged old primaries \(totals.diverged) (re-seeded), followed \(totals.followed), violations \(totals.violations)")
    }

    struct Plan: CustomStringConvertible {
        var mode: FaultProxy.Partition
        var writers: Int
        var beforePartitionMs: Int
        var partitionedMs: Int
        /// The writers pause just before the partition until the failover, once every write
        /// is on all three nodes, and nothing is written to n1 after (no probe writes that
        /// would land in its WAL): its rejoin must then follow, not be refused as diverged.
        var quiet = false
        /// Each chunk through the proxies waits this long (FaultProxy.setDelay) from the start.
        var linkDelayMs = 0
        var description: String {
            "\(mode)\(quiet ? " quiet" : "")\(linkDelayMs > 0 ? ", links +\(linkDelayMs) ms" : ""), \(writers) writers, partition after \(beforePartitionMs) ms, failover \(partitionedMs) ms later"
        }
    }

    struct Totals {
        var partitions = 0, cut = 0, refused = 0, blackholed = 0, acked = 0, refusals = 0, diverged = 0, followed = 0, violations = 0
    }

    /// Counts what the checkers found: an `#expect` that fails is also a violation counted.
    final class Violations: @unchecked Sendable {
        private let lock = NSLock()
        private var found: [String] = []
        func check(_ condition: Bool, _ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(condition, "\(what())", sourceLocation: sourceLocation)
            if !condition { lock.withLock { found.append(what()) } }
        }
        var count: Int { lock.withLock { found.count } }
    }

    func partitionRound(round: Int, plan: Plan, totals: inout Totals) async throws {
        // facts_gather_timeout_ms (which also bounds the claim and the re-pointing) at the
        // shipped default: with 500 ms a loaded machine once let a reachable member's
        // fsync'd promise answer too late (PROMOTE-CLAIM-1, docs/reliability.md).
        let cluster = try PromoCluster(syncTimeoutMs: 1_000, factsGatherTimeoutMs: 2_000, proxyPrimary: true)
        defer { cluster.stopAll() }
        for proxy in cluster.primaryProxies { proxy.setDelay(ms: plan.linkDelayMs) }
        try cluster.startAll()
        // Replication through the proxies runs before the clock of the plan starts.
        let warm = await cluster.put(0, "warm-up", "r\(round)")
        try #require(warm.status == 200, "\(warm.text)")
        let violations = Violations()
        let acks = AckLog()
        let refusals = NIOTarget(0)
        let target = NIOTarget(0)
        let stop = NIOTarget(0)
        // Set once the promotion answered: from then on epoch 2 exists, and n1 must not
        // acknowledge any write sent to it after this.
        let newEpochExists = NIOTarget(0)
        let pause = NIOTarget(0)
        let inFlight = NIOTarget(0)
        let tasks = (0..<plan.writers).map { writer in
            Task {
                var i = 0
                while stop.value == 0 {
                    inFlight.add(1)
                    if pause.value == 1 {
                        inFlight.add(-1)
                        try? await Task.sleep(for: .milliseconds(Self.refusedPauseMs))
                        continue
                    }
                    let node = target.value
                    let sentAfterNewEpoch = newEpochExists.value == 1
                    let key = "w\(writer)-\(i)"
                    let value = "r\(round)-\(key)"
                    let reply = await cluster.put(node, key, value)
                    inFlight.add(-1)
                    if reply.status == 200, let epoch = reply.json?["epoch"]?.integerValue, let lsn = reply.json?["lsn"]?.integerValue {
                        acks.add(.init(key: key, value: value, node: node, epoch: UInt64(epoch), lsn: UInt64(lsn)))
                        violations.check(!(node == 0 && sentAfterNewEpoch), "n1 acknowledged \(key) at epoch \(epoch), sent after epoch 2 existed")
                    } else if reply.status != 0 {
                        refusals.add(1)
                        violations.check(PromoCluster.errorCode(reply) != nil, "unexplained answer: \(reply.status) \(reply.text)")
                    }
                    i += 1
                    if reply.status != 200 { try? await Task.sleep(for: .milliseconds(Self.refusedPauseMs)) }
                }
            }
        }
        // A round that ends early (a failed #require) still stops its writers.
        defer { stop.value = 1 }
        try await Task.sleep(for: .milliseconds(plan.beforePartitionMs))
        if plan.quiet {
            pause.value = 1
            try await waitQuiet(cluster, inFlight: inFlight)
        }
        for proxy in cluster.primaryProxies { proxy.partition(plan.mode) }
        try await Task.sleep(for: .milliseconds(plan.partitionedMs))

        // The operator fails over to n2 (or to n3, when DUR-2 names it).
        let asked = ContinuousClock.now
        let (candidate, promoted) = await cluster.failOverAsOperator()
        let other = candidate == 1 ? 2 : 1
        try #require(promoted.json?["outcome"]?.stringValue == "promoted", "round \(round) (\(plan)): \(promoted.text)")
        newEpochExists.value = 1
        let promoteMs = Int((ContinuousClock.now - asked) / .milliseconds(1))
        // n1 was unreachable for the facts, the claim and the re-pointing: only through the proxy.
        #expect(promoted.json?["unreachable"] == .array([.string("n1")]), "\(promoted.text)")
        #expect(promoted.json?["repointed"] == .array([.string("n\(other + 1)")]), "\(promoted.text)")
        target.value = candidate
        pause.value = 0
        let newStatus = try #require(await cluster.request(candidate, "GET", "/v1/status").json)
        let history = try #require(newStatus["epoch_history"]?.arrayValue)
        let branchLSN = try #require(history.last?["start_lsn"]?.integerValue)

        // Still partitioned: n1 believes it is primary of epoch 1 and cannot acknowledge.
        if !plan.quiet {
            let cut = await cluster.put(0, "probe-partitioned", "x")
            violations.check(cut.status != 200, "n1 acknowledged a write while partitioned after epoch 2: \(cut.text)")
            #expect(["REPL-SYNC-TIMEOUT", "REPL-QUORUM-1"].contains(PromoCluster.errorCode(cut)), "\(cut.text)")
        }

        // Heal. Nobody tells n1 of epoch 2 by itself (no background retries): its sync replicas
        // follow the new primary, so it still acknowledges nothing.
        let stats = cluster.primaryProxies.map(\.stats)
        for proxy in cluster.primaryProxies { proxy.heal() }
        if !plan.quiet {
            let healed = await cluster.put(0, "probe-healed", "x")
            violations.check(healed.status != 200, "n1 acknowledged a write after the heal: \(healed.text)")
            #expect(["REPL-SYNC-TIMEOUT", "REPL-QUORUM-1"].contains(PromoCluster.errorCode(healed)), "\(healed.text)")
        }
        #expect(await cluster.role(0).map { "\($0.role) \($0.epoch)" } == "primary 1")

        // A client that saw epoch 2 tells n1; from then on it refuses every write.
        let told = await cluster.put(0, "probe-told", "x", headers: ["X-AeroDB-Epoch": "2"])
        violations.check(told.status != 200, "n1 acknowledged a write carrying epoch 2: \(told.text)")
        #expect(PromoCluster.errorCode(told) == "REPL-STALE-EPOCH", "\(told.text)")
        let after = await cluster.put(0, "probe-after", "x")
        violations.check(after.status != 200, "n1 acknowledged a write after it learned of epoch 2: \(after.text)")
        #expect(PromoCluster.errorCode(after) == "REPL-STALE-EPOCH", "\(after.text)")

        stop.value = 1
        for task in tasks { await task.value }

        // Rejoin: diverged exactly when n1 holds records at or past the branch point.
        let oldDurable = try #require(await cluster.request(0, "GET", "/v1/status").json?["node"]?["durable_lsn"]?.integerValue)
        let diverged = oldDurable >= branchLSN
        if plan.quiet { #expect(!diverged, "quiet round: n1 durable to \(oldDurable), epoch 2 starts at \(branchLSN)") }
        let rejoin = try RemoteCommandTests.aerodb(["rejoin", "--addr", "127.0.0.1:\(cluster.http[0])", "--primary-addr", "127.0.0.1:\(cluster.http[candidate])"])
        if diverged {
            #expect(rejoin.status == 1, "\(rejoin.stdout) \(rejoin.stderr)")
            let refusal = try JSONParser.parse(rejoin.stderr)
            #expect(refusal["rule"]?.stringValue == "PROMOTE-DIVERGED-1", "\(rejoin.stderr)")
            #expect(refusal["message"]?.stringValue?.contains("aerodb reseed") == true, "\(rejoin.stderr)")
            #expect(await cluster.role(0).map { "\($0.role) \($0.epoch)" } == "primary 1", "a refused rejoin changes no authority")
            // The operator re-seeds n1 from the new primary and starts it: it follows.
            cluster.kill9(0)
            let reseed = try RemoteCommandTests.aerodb(["reseed", "--config", cluster.configPaths[0], "--from", "127.0.0.1:\(cluster.http[candidate])",
                                                        "--discard-local-state"])
            #expect(reseed.status == 0, "\(reseed.stdout) \(reseed.stderr)")
            try cluster.start(0)
        } else {
            #expect(rejoin.status == 0, "n1 durable to \(oldDurable), branch at \(branchLSN): \(rejoin.stdout) \(rejoin.stderr)")
        }
        #expect(await cluster.role(0).map { "\($0.role) \($0.epoch)" } == "replica 2")
        violations.check(await cluster.put(0, "after-rejoin", "x").status != 200, "n1 acknowledged a write as a replica")

        // Checkers.
        let byEpoch = acks.writersByEpoch()
        for (epoch, nodes) in byEpoch { violations.check(nodes.count == 1, "epoch \(epoch) had writers \(nodes)") }
        violations.check(byEpoch[1] == nil || byEpoch[1] == [0], "epoch 1 writers \(byEpoch[1] ?? [])")
        violations.check(byEpoch[2] == nil || byEpoch[2] == [candidate], "epoch 2 writers \(byEpoch[2] ?? [])")
        let last = await cluster.put(candidate, "last", "r\(round)")
        #expect(last.status == 200, "\(last.text)")
        let lastLSN = last.json?["lsn"]?.integerValue ?? 0
        for ack in acks.all {
            for node in 0..<PromoCluster.count {
                let read = await cluster.request(node, "GET", "/v1/kv/\(ack.key)?min_lsn=\(lastLSN)")
                violations.check(read.status == 200 && read.text == ack.value,
                                 "acknowledged \(ack.key) (n\(ack.node + 1), epoch \(ack.epoch), LSN \(ack.lsn)) missing on n\(node + 1): \(read.status) \(read.text)")
            }
        }
        try await replayEveryDecision(cluster, node: 1, expected: 1)
        if candidate == 2 { try await replayEveryDecision(cluster, node: 2, expected: 1) }

        totals.partitions += 1
        totals.cut += stats.map(\.cut).reduce(0, +)
        totals.refused += stats.map(\.refused).reduce(0, +)
        totals.blackholed += stats.map(\.blackholed).reduce(0, +)
        totals.acked += acks.all.count
        totals.refusals += refusals.value
        totals.diverged += diverged ? 1 : 0
        totals.followed += diverged ? 0 : 1
        totals.violations += violations.count
        let epochOne = acks.all.filter { $0.epoch == 1 }.count
        print("partitionAndFailOver round \(round) (\(plan)): candidate n\(candidate + 1) promoted in \(promoteMs) ms, \(acks.all.count) acknowledged writes checked "
            + "(\(epochOne) at epoch 1 by n1, \(acks.all.count - epochOne) at epoch 2), "
            + "\(refusals.value) refused, proxies \(stats.map { "\($0.cut) cut/\($0.refused) refused/\($0.blackholed) held" }), "
            + "n1 durable \(oldDurable) vs branch \(branchLSN): \(diverged ? "diverged, re-seeded" : "followed"), violations \(violations.count)")
    }

    @Test("the fault proxy forwards, refuses, black-holes and heals (against a stub HTTP server)")
    func faultProxy() async throws {
        let stub = try StubHTTPServer(body: #"{"ok":true}"#)
        defer { stub.stop() }
        let proxy = try FaultProxy(name: "stub", targetPort: stub.port)
        defer { proxy.stop() }
        // Bounded by racing a sleep: URLSession's timeout is an idle timeout, and a
        // black-holed connection would hold the request far longer (as PeerHTTP notes).
        func get(timeoutMs: Int = 5_000) async -> Int {
            await withTaskGroup(of: Int?.self) { group -> Int in
                group.addTask {
                    let request = URLRequest(url: URL(string: "http://\(proxy.address)/x")!, timeoutInterval: Double(timeoutMs) / 1000)
                    guard let (_, response) = try? await URLSession.shared.data(for: request) else { return 0 }
                    return (response as? HTTPURLResponse)?.statusCode ?? 0
                }
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(timeoutMs))
                    return Task.isCancelled ? nil : 0
                }
                var first: Int?
                while first == nil, let next = await group.next() { first = next }
                group.cancelAll()
                return first ?? 0
            }
        }
        #expect(await get() == 200)
        proxy.partition(.refuse)
        #expect(await get() == 0)
        #expect(proxy.stats.refused >= 1)
        proxy.heal()
        #expect(await get() == 200)
        proxy.partition(.blackhole)
        let served = stub.requests
        #expect(await get(timeoutMs: 500) == 0)
        #expect(proxy.stats.blackholed >= 1 && stub.requests == served, "a black-holed request reached the target")
        proxy.heal()
        proxy.setDelay(ms: 50)
        #expect(await get() == 200)
        #expect(proxy.stats.forwarded >= 3 && proxy.stats.bytes > 0)
    }

    /// Quiet rounds: waits (bounded) until no write is in flight and n2 and n3 are durable to
    /// n1's position, so that n1 holds nothing its replicas do not.
    func waitQuiet(_ cluster: PromoCluster, inFlight: NIOTarget) async throws {
        let quietWaitMs = 10_000
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(quietWaitMs)
        while inFlight.value > 0 && clock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        try #require(inFlight.value == 0, "writes still in flight after \(quietWaitMs) ms")
        while clock.now < deadline {
            var durable: [Int64] = []
            for node in 0..<PromoCluster.count {
                durable.append(await cluster.request(node, "GET", "/v1/status").json?["node"]?["durable_lsn"]?.integerValue ?? -1)
            }
            if durable[1] == durable[0] && durable[2] == durable[0] { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("n2 and n3 did not reach n1's durable position within \(quietWaitMs) ms")
    }
}
