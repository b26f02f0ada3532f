import AeroCore
import AeroTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The cluster users start: `aerodb local-cluster start` with its defaults (3 nodes: ANY 1 of
/// the two replicas; 2 nodes: the one replica), driven only through the CLI and HTTP like an
/// operator would. kill -9 of the primary under continuous writes, failover with the old
/// primary kept dead, writes acknowledged by the new primary within 1 s of the promote answer,
/// no acknowledged write lost; a chain of two failovers; a two-node failover; two operators at
/// once. Quick mode in CI; AERODB_FAILOVER_LONG=1 runs more rounds. Seeded (printed).
@Suite("failover on the default local cluster", .serialized)
struct DefaultClusterFailoverTests {
    /// Writers running while the primary is killed.
    static let writers = 4
    /// The bound on "the new primary acknowledges writes" after the promote answer.
    static let serviceWithinMs: UInt64 = 1_000
    static var rounds: Int { failoverLongMode ? 6 : 1 }

    @Test("kill -9 the primary under writes, promote the named replica, writes within 1 s, nothing acknowledged lost; then a second failover after the old primary rejoins")
    func failoverChainUnderWrites() async throws {
        let seed = failoverSeed("DefaultClusterFailoverTests.failoverChainUnderWrites")
        var rng = SeededRandom(seed: seed)
        for round in 0..<Self.rounds {
            let cluster = try LocalClusterHarness(nodes: 3)
            defer { cluster.stop() }
            let acks = AckLog()
            // First failover: n1 dies under writes.
            let loadMs = 150 + rng.next(below: 250)
            try await cluster.killUnderWrites(0, writers: Self.writers, loadMs: loadMs, acks: acks, round: round)
            let first = try await cluster.failOver(alive: [1, 2], acks: acks)
            #expect(first.serviceMs <= Self.serviceWithinMs, "round \(round): the new primary acknowledged its first write \(first.serviceMs) ms after the promote answer")
            try await cluster.checkNothingLost(acks, on: first.primary, round: round)
            // The old primary comes back and rejoins the new one (re-seeded if it diverged).
            try cluster.restart(0)
            try cluster.rejoin(0, primary: first.primary)
            try await cluster.waitCaughtUp(0, primary: first.primary)
            // Second failover: the new primary dies under writes; the survivor and n1 remain.
            try await cluster.killUnderWrites(first.primary, writers: Self.writers, loadMs: loadMs, acks: acks, round: round)
            let alive = [0, 1, 2].filter { $0 != first.primary }
            let second = try await cluster.failOver(alive: alive, acks: acks)
            #expect(second.serviceMs <= Self.serviceWithinMs, "round \(round): second failover served after \(second.serviceMs) ms")
            try await cluster.checkNothingLost(acks, on: second.primary, round: round)
            // One writer per epoch.
            for (epoch, nodes) in acks.writersByEpoch() {
                #expect(nodes.count == 1, "round \(round): epoch \(epoch) had writers \(nodes.sorted())")
            }
            print("DefaultClusterFailoverTests round \(round): \(acks.all.count) acknowledged writes checked; failover served in \(first.serviceMs) ms and \(second.serviceMs) ms")
        }
    }

    @Test("two nodes: the sole replica of a dead primary is promoted, refuses writes at once with REPL-QUORUM-1, and serves once the old primary rejoins")
    func twoNodeFailover() async throws {
        let cluster = try LocalClusterHarness(nodes: 2)
        defer { cluster.stop() }
        #expect(await cluster.put(0, "before", "v").status == 200)
        cluster.kill9(0)
        let promote = try cluster.aerodb(["promote", "--addr", cluster.addr(1), "--kind", "failover", "--requested-by", "test", "--format", "json"])
        let answer = try JSONParser.parse(promote.stdout)
        #expect(promote.status == 1, "\(promote.stdout) \(promote.stderr)")
        #expect(answer["outcome"]?.stringValue == "promoted_without_service", "\(promote.stdout)")
        #expect(answer["rule"]?.stringValue == "REPL-QUORUM-1")
        #expect(answer["message"]?.stringValue?.contains("aerodb rejoin --addr \(cluster.addr(0)) --primary-addr \(cluster.addr(1))") == true, "\(promote.stdout)")
        // Writes are refused at once (after the role's short grace window), never a 5 s wait each.
        try await Task.sleep(for: .milliseconds(1_100))
        let started = ContinuousClock.now
        let refused = await cluster.put(1, "during", "v")
        #expect(ContinuousClock.now - started < .milliseconds(500))
        #expect(PromoCluster.errorCode(refused) == "REPL-QUORUM-1", "\(refused.text)")
        // What the refusal says restores service does.
        try cluster.restart(0)
        try cluster.rejoin(0, primary: 1)
        var served = await cluster.put(1, "after", "v")
        _ = await Deadline.waitUntil(timeoutMs: 10_000, pollMs: 20) {
            if served.status != 200 { served = await cluster.put(1, "after", "v") }
            return served.status == 200
        }
        #expect(served.status == 200 && served.json?["epoch"]?.integerValue == 2, "\(served.text)")
        #expect(await cluster.get(1, "before").text == "v")
    }

    @Test("two operators at once: promotions of n2 and n3 for the same epoch cannot both win")
    func twoOperatorsAtOnce() async throws {
        let cluster = try LocalClusterHarness(nodes: 3)
        defer { cluster.stop() }
        #expect(await cluster.put(0, "k", "v").status == 200)
        cluster.kill9(0)
        async let a = cluster.promoteHTTP(1)
        async let b = cluster.promoteHTTP(2)
        let outcomes = [await a, await b].map { $0.json?["outcome"]?.stringValue ?? "no answer" }
        #expect(outcomes.filter { $0 == "promoted" }.count <= 1, "\(outcomes)")
        let primaries = await [1, 2].asyncFilter { await cluster.role($0)?.role == "primary" }
        #expect(primaries.count <= 1, "two primaries: \(primaries)")
    }
}

extension Array {
    func asyncFilter(_ keep: (Element) async -> Bool) async -> [Element] {
        var kept: [Element] = []
        for element in self where await keep(element) { kept.append(element) }
        return kept
    }
}

/// A `local-cluster start` cluster with its defaults, and the operator's moves on it.
final class LocalClusterHarness: @unchecked Sendable {
    let dir: String
    let base: Int
    let nodes: Int
    private var restarted: [Int: Process] = [:]

    init(nodes: Int) throws {
        self.nodes = nodes
        var base = Int.random(in: 10_000...31_000)
        for _ in 0..<100 where !((1...nodes).flatMap { [$0, 100 + $0] }.allSatisfy { loopbackPortIsFree(base + $0) }) { base += 11 }
        self.base = base
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-dlc-\(UUID().uuidString)").path
        let start = try aerodb(["local-cluster", "start", "--nodes", String(nodes), "--dir", dir, "--base-port", String(base)])
        guard start.status == 0 else { throw ServeProcess.StartError(output: start.stdout + start.stderr) }
        // The replicas connect within milliseconds; wait (bounded) so the first write finds its quorum.
        _ = Deadline.waitUntilBlocking(timeoutMs: 10_000, pollMs: 20) {
            let status = try? JSONParser.parse(aerodb(["status", "--addr", addr(0)]).stdout)
            return (status?["cluster"]?["streaming_replicas"]?.arrayValue?.count ?? 0) == nodes - 1
        }
    }

    func aerodb(_ arguments: [String]) throws -> RemoteCommandTests.Run { try RemoteCommandTests.aerodb(arguments) }
    func addr(_ index: Int) -> String { "127.0.0.1:\(base + index + 1)" }

    func stop() {
        _ = try? aerodb(["local-cluster", "stop", "--dir", dir])
        for process in restarted.values where process.isRunning { ChildProcess.kill9(process) }
        try? FileManager.default.removeItem(atPath: dir)
    }

    func pid(_ index: Int) -> pid_t? {
        (try? String(contentsOfFile: "\(dir)/n\(index + 1).pid", encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    func kill9(_ index: Int) {
        if let process = restarted.removeValue(forKey: index) {
            ChildProcess.kill9(process)
        } else if let pid = pid(index) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = Deadline.waitUntilBlocking(timeoutMs: 2_000, pollMs: 10) {
                _ = waitpid(pid, &status, WNOHANG)
                return kill(pid, 0) != 0
            }
        }
    }

    /// Starts node `index` again from its config, as an operator would (`aerodb serve --config`).
    func restart(_ index: Int) throws {
        let node = try PromoNode(config: "\(dir)/n\(index + 1).json")
        restarted[index] = node.process
        try String(node.process.processIdentifier).write(toFile: "\(dir)/n\(index + 1).pid", atomically: true, encoding: .utf8)
        keptNodes.append(node)
    }
    /// The restarted processes' owners (a PromoNode kills its process when released).
    private var keptNodes: [PromoNode] = []

    /// `aerodb rejoin`; a diverged node (records its primary never acknowledged) is stopped,
    /// re-seeded from the new primary (`aerodb reseed`) and started again, as the refusal says.
    func rejoin(_ index: Int, primary: Int) throws {
        let run = try aerodb(["rejoin", "--addr", addr(index), "--primary-addr", addr(primary)])
        if run.status == 0 { return }
        let said = run.stdout + run.stderr
        #expect(said.contains("DIVERGED") || said.contains("reseed"), "rejoin refused without naming a divergence: \(said)")
        kill9(index)
        let reseed = try aerodb(["reseed", "--config", "\(dir)/n\(index + 1).json", "--from", addr(primary), "--discard-local-state"])
        #expect(reseed.status == 0, "reseed: \(reseed.stdout) \(reseed.stderr)")
        try restart(index)
    }

    func waitCaughtUp(_ index: Int, primary: Int) async throws {
        let caughtUp = await Deadline.waitUntil(timeoutMs: 10_000, pollMs: 20) {
            let mine = await request(index, "GET", "/v1/status").json?["node"]
            let theirs = await request(primary, "GET", "/v1/status").json?["node"]
            guard let a = mine?["durable_lsn"]?.integerValue, let b = theirs?["durable_lsn"]?.integerValue else { return false }
            return a >= b && mine?["following"]?.stringValue == "n\(primary + 1)"
        }
        if caughtUp { return }
        Issue.record("n\(index + 1) did not catch up with n\(primary + 1) within 10 s")
    }

    /// Runs `writers` loops of writes against `primary` for `loadMs`, kills it -9 while they
    /// run, and records every acknowledged write.
    func killUnderWrites(_ primary: Int, writers: Int, loadMs: Int, acks: AckLog, round: Int) async throws {
        let stopAt = ContinuousClock.now + .milliseconds(loadMs)
        let killed = ManagedFlag()
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var i = 0
                    while !killed.value && i < 100_000 {
                        let key = "r\(round)-p\(primary)-w\(writer)-\(i)"
                        let reply = await self.put(primary, key, key, timeoutMs: 3_000)
                        if reply.status == 200, let epoch = reply.json?["epoch"]?.integerValue, let lsn = reply.json?["lsn"]?.integerValue {
                            acks.add(.init(key: key, value: key, node: primary, epoch: UInt64(epoch), lsn: UInt64(lsn)))
                        }
                        if reply.status == 0 { break }
                        i += 1
                    }
                }
            }
            group.addTask {
                try? await Task.sleep(until: stopAt)
                self.kill9(primary)
                killed.value = true
            }
        }
    }

    struct Failover {
        var primary: Int
        var serviceMs: UInt64
    }

    /// The operator's failover: ask the first survivor; if the refusal names another candidate
    /// (DUR-1/DUR-2), ask that one, as the explanation says. Then one write on the new primary,
    /// timed from the promote answer.
    func failOver(alive: [Int], acks: AckLog) async throws -> Failover {
        var candidate = alive[0]
        var run = try aerodb(["promote", "--addr", addr(candidate), "--kind", "failover", "--requested-by", "test", "--format", "json"])
        var answer = try JSONParser.parse(run.stdout)
        if answer["outcome"]?.stringValue == "refused" {
            let named = alive.first { run.stdout.contains("name n\($0 + 1) as the candidate") }
            let named2 = try #require(named, "a refusal with no candidate to name is a dead end: \(run.stdout)")
            candidate = named2
            run = try aerodb(["promote", "--addr", addr(candidate), "--kind", "failover", "--requested-by", "test", "--format", "json"])
            answer = try JSONParser.parse(run.stdout)
        }
        #expect(run.status == 0 && answer["outcome"]?.stringValue == "promoted", "\(run.stdout) \(run.stderr)")
        let answeredMs = CommitWaiters_monotonicMs()
        let write = await put(candidate, "first-after-\(candidate)-\(answeredMs)", "v", timeoutMs: 5_000)
        let serviceMs = CommitWaiters_monotonicMs() - answeredMs
        #expect(write.status == 200, "the new primary refused its first write: \(write.text)")
        if let epoch = write.json?["epoch"]?.integerValue, let lsn = write.json?["lsn"]?.integerValue {
            acks.add(.init(key: "first-after-\(candidate)-\(answeredMs)", value: "v", node: candidate, epoch: UInt64(epoch), lsn: UInt64(lsn)))
        }
        return Failover(primary: candidate, serviceMs: serviceMs)
    }

    /// Checker: every acknowledged write reads back from `primary` with its value.
    func checkNothingLost(_ acks: AckLog, on primary: Int, round: Int) async throws {
        var lost: [String] = []
        for ack in acks.all {
            let read = await get(primary, ack.key)
            if read.status != 200 || read.text != ack.value { lost.append(ack.key) }
        }
        #expect(lost.isEmpty, "round \(round): \(lost.count) acknowledged write(s) lost on n\(primary + 1), e.g. \(lost.prefix(5))")
    }

    // MARK: HTTP

    func request(_ index: Int, _ method: String, _ path: String, body: String? = nil, timeoutMs: Int = 5_000) async -> PromoCluster.Reply {
        var request = URLRequest(url: URL(string: "http://\(addr(index))\(path)")!, timeoutInterval: Double(timeoutMs) / 1000)
        request.httpMethod = method
        request.httpBody = body.map { Data($0.utf8) }
        guard let (data, response) = try? await URLSession.shared.data(for: request), let http = response as? HTTPURLResponse else {
            return PromoCluster.Reply(status: 0, json: nil, text: "")
        }
        let text = String(decoding: data, as: UTF8.self)
        return PromoCluster.Reply(status: http.statusCode, json: try? JSONParser.parse(text), text: text)
    }

    func put(_ index: Int, _ key: String, _ value: String, timeoutMs: Int = 5_000) async -> PromoCluster.Reply {
        await request(index, "PUT", "/v1/kv/\(key)", body: value, timeoutMs: timeoutMs)
    }

    func get(_ index: Int, _ key: String) async -> PromoCluster.Reply { await request(index, "GET", "/v1/kv/\(key)") }

    func promoteHTTP(_ index: Int) async -> PromoCluster.Reply {
        await request(index, "POST", "/v1/admin/promote", body: #"{"kind":"failover","dry_run":false,"requested_by":"operator-\#(index)"}"#, timeoutMs: 30_000)
    }

    func role(_ index: Int) async -> (role: String, epoch: Int64)? {
        guard let node = await request(index, "GET", "/v1/status").json?["node"], let role = node["role"]?.stringValue,
              let epoch = node["epoch"]?.integerValue else { return nil }
        return (role, epoch)
    }
}

/// A flag set by one task and read by others.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool {
        get { lock.withLock { flag } }
        set { lock.withLock { flag = newValue } }
    }
}

func CommitWaiters_monotonicMs() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }
