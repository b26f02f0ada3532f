import AeroCore
import AeroTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP port on 127.0.0.1 that is free now, below Linux's ephemeral range (32768 and up), so
/// that the OS does not hand it to another socket (an outgoing connection, a port-0 listener)
/// before the node binds it. Bounded random search.
func freeLoopbackPort() throws -> Int {
    for _ in 0..<1000 {
        let port = Int.random(in: 10_000..<32_000)
        if loopbackPortIsFree(port) { return port }
    }
    throw PortSearchFailed()
}

struct PortSearchFailed: Error {}

/// A two-node cluster of real processes: n1 primary, n2 its sync replica.
final class TwoNodeCluster {
    let root: String
    let httpPorts: [Int]
    let peerPorts: [Int]
    var nodes: [ServeProcess?] = [nil, nil]

    init(commitMode: String, syncTimeoutMs: Int) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-cluster-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        httpPorts = try [freeLoopbackPort(), freeLoopbackPort()]
        peerPorts = try [freeLoopbackPort(), freeLoopbackPort()]
        let members = (0..<2).map {
            #"{"id":"n\#($0 + 1)","http":"127.0.0.1:\#(httpPorts[$0])","peer":"127.0.0.1:\#(peerPorts[$0])"}"#
        }.joined(separator: ",")
        let sync = commitMode == "sync" ? #","sync_replicas":["n2"]"# : ""
        for i in 0..<2 {
            let config = """
                {"id":"n\(i + 1)","data_dir":"n\(i + 1)","http":"127.0.0.1:\(httpPorts[i])","peer":"127.0.0.1:\(peerPorts[i])",
                 "members":[\(members)],"commit_mode":"\(commitMode)"\(sync),"initial_primary":"n1",
                 "timeouts":{"sync_commit_timeout_ms":\(syncTimeoutMs),"heartbeat_interval_ms":20}}
                """
            try config.write(toFile: root + "/n\(i + 1).json", atomically: true, encoding: .utf8)
        }
    }

    func start(_ index: Int) throws -> ServeProcess {
        let node = try ServeProcess(arguments: ["serve", "--config", root + "/n\(index + 1).json"], dataDir: root + "/n\(index + 1)")
        nodes[index] = node
        return node
    }

    func stopAll() {
        for node in nodes { _ = node?.stop() }
        nodes = [nil, nil]
        try? FileManager.default.removeItem(atPath: root)
    }
}

@Suite("A cluster of real processes", .serialized)
struct ClusterProcessTests {
    @Test("sync mode: writes replicate, replicas refuse writes and serve min_lsn reads, a missing sync replica times writes out, its return resumes them")
    func syncCluster() async throws {
        // 3 s: generous for a loaded CI machine, and the time the outage write below waits.
        let cluster = try TwoNodeCluster(commitMode: "sync", syncTimeoutMs: 3000)
        defer { cluster.stopAll() }
        let n1 = try cluster.start(0)
        var n2 = try cluster.start(1)

        var acknowledged: [(key: String, lsn: Int64)] = []
        for i in 0..<100 {
            let reply = try await n1.request("PUT", "/v1/kv/k\(i)", body: Data("v\(i)".utf8))
            #expect(reply.status == 200, "\(reply.text)")
            if let lsn = reply.json?["lsn"]?.integerValue { acknowledged.append(("k\(i)", lsn)) }
        }
        #expect(acknowledged.count == 100)

        // Sync: acknowledged means durable on n2, so a read at that LSN needs no wait.
        for (key, lsn) in acknowledged {
            let read = try await n2.request("GET", "/v1/kv/\(key)?min_lsn=\(lsn)")
            #expect(read.status == 200 && read.text == "v\(key.dropFirst())", "\(key): \(read.status) \(read.text)")
            #expect(read.headers["x-aerodb-role"] == "replica")
            #expect(read.headers["x-aerodb-staleness-lsn"] != nil)
        }

        let refused = try await n2.request("PUT", "/v1/kv/x", body: Data("no".utf8))
        #expect(refused.status == 409)
        #expect(refused.json?["error"]?["code"] == .string("REPL-WRITE-ON-REPLICA"))
        #expect(refused.text.contains("following primary n1"))

        // n2 crashes: a sync write cannot be acknowledged. Once the quorum grace window after the
        // session ended has passed it is refused at once, before it is written (REPL-QUORUM-1).
        n2.crash()
        try await Task.sleep(for: .milliseconds(1_200))
        let started = ContinuousClock.now
        let timedOut = try await n1.request("PUT", "/v1/kv/during", body: Data("outage".utf8))
        #expect(ContinuousClock.now - started < .milliseconds(500), "refused at once, not after a timeout")
        #expect(timedOut.status == 503)
        #expect(timedOut.json?["error"]?["code"] == .string("REPL-QUORUM-1"), "\(timedOut.text)")
        #expect(timedOut.json?["error"]?["explanation"]?["facts"]?["connected"] == .array([]))
        #expect(timedOut.json?["error"]?["explanation"]?["facts"]?["durability"] == .object(["quorum": .integer(1), "set": .array([.string("n2")])]))
        #expect(try await n1.request("GET", "/v1/kv/during").status == 404, "nothing was written")

        // n2 returns and catches up; writes are acknowledged again (bounded attempts).
        n2 = try cluster.start(1)
        var resumed = false
        for attempt in 0..<20 where !resumed {
            let reply = try await n1.request("PUT", "/v1/kv/after-\(attempt)", body: Data("back".utf8))
            resumed = reply.status == 200
        }
        #expect(resumed)
        for (key, lsn) in acknowledged {
            let read = try await n2.request("GET", "/v1/kv/\(key)?min_lsn=\(lsn)")
            #expect(read.status == 200, "lost acknowledged \(key) on the replica")
        }
        // The refused write was never made: not on n1, not on n2.
        #expect(try await n2.request("GET", "/v1/kv/during").status == 404)

        let status = try await n1.request("GET", "/v1/status")
        #expect(status.json?["cluster"]?["commit_mode"] == .string("sync"))
        let metrics = try await n1.request("GET", "/metrics")
        #expect(metrics.text.contains("aerodb_refusals_total{rule=\"REPL-QUORUM-1\"} 1"), "\(metrics.text)")
    }

    /// Writes of the async test: 10,000 by default (issue 5); AERODB_CLUSTER_WRITES changes it.
    static let asyncWrites = ProcessInfo.processInfo.environment["AERODB_CLUSTER_WRITES"].flatMap(Int.init) ?? 10_000
    /// Concurrent HTTP clients writing.
    static let clients = 16
    /// Bound on waiting for the replica to catch up.
    static let catchUpWaitMs = 30_000

    static func durableLSN(_ node: ServeProcess) async throws -> Int64 {
        try await node.request("GET", "/v1/status").json?["node"]?["durable_lsn"]?.integerValue ?? -1
    }

    @Test("async mode: 10k concurrent writes replicate exactly; a primary killed with SIGKILL restarts without losing an acknowledged write")
    func asyncCluster() async throws {
        let cluster = try TwoNodeCluster(commitMode: "async", syncTimeoutMs: 1000)
        defer { cluster.stopAll() }
        var n1 = try cluster.start(0)
        let n2 = try cluster.start(1)

        let writes = Self.asyncWrites
        let primary = n1
        let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<Self.clients {
                group.addTask {
                    var mine: [String] = []
                    for i in stride(from: client, to: writes, by: Self.clients) {
                        let reply = try await primary.request("PUT", "/v1/kv/k\(i)", body: Data("v\(i)".utf8))
                        if reply.status == 200 { mine.append("k\(i)") }
                    }
                    return mine
                }
            }
            var all: [String] = []
            for try await keys in group { all += keys }
            return all
        }
        #expect(acknowledged.count == writes)

        let target = try await Self.durableLSN(n1)
        _ = try await Deadline.waitUntil(timeoutMs: Self.catchUpWaitMs, pollMs: 10) { try await Self.durableLSN(n2) >= target }
        #expect(try await Self.durableLSN(n2) == target)
        let onPrimary = try await n1.request("GET", "/v1/kv?prefix=k").json?["entries"]
        let onReplica = try await n2.request("GET", "/v1/kv?prefix=k&min_lsn=\(target)").json?["entries"]
        #expect(onPrimary?.arrayValue?.count == writes)
        #expect(onPrimary == onReplica, "the replica's data equals the primary's")

        // SIGKILL the primary and restart it: every acknowledged write is still there.
        n1.crash()
        n1 = try cluster.start(0)
        let recovered = try await n1.request("GET", "/v1/kv?prefix=k").json?["entries"]?.arrayValue ?? []
        let recoveredKeys = Set(recovered.compactMap { $0["key"]?.stringValue })
        #expect(Set(acknowledged).isSubset(of: recoveredKeys), "\(Set(acknowledged).subtracting(recoveredKeys).count) acknowledged writes lost")
        // The replica reconnects by itself and follows the restarted primary.
        let after = try await n1.request("PUT", "/v1/kv/after-restart", body: Data("yes".utf8))
        let afterLSN = try #require(after.json?["lsn"]?.integerValue)
        // min_lsn refuses (REPL-STALE-READ) while the replica is still reconnecting: ask again,
        // a bounded number of times; never is older data returned instead.
        var read = try await n2.request("GET", "/v1/kv/after-restart?min_lsn=\(afterLSN)")
        for _ in 0..<20 where read.status == 503 {
            #expect(read.json?["error"]?["code"] == .string("REPL-STALE-READ"))
            read = try await n2.request("GET", "/v1/kv/after-restart?min_lsn=\(afterLSN)")
        }
        #expect(read.status == 200 && read.text == "yes", "\(read.status) \(read.text)")
    }
}
