// ServerBenchmark.swift — `aerodb-bench server`: commit throughput, latency and replication lag
// of `aerodb serve` processes on loopback.
//
// For each setup (standalone; async with one replica; sync with one replica) the bench starts
// fresh `aerodb` processes (the binary given by --aerodb, a release build), then, for each client
// count, runs that many threads, each with its own keep-alive HTTP/1.1 connection, doing
// `PUT /v1/kv/<key>` of --value-bytes bytes for --seconds. Every latency (request sent -> 200
// read) is kept; throughput is acknowledged writes / elapsed time.
// Lag (setups with a replica): at half the setup's best throughput (paced writer threads), a
// probe thread writes to the primary and then reads that key from the replica with
// `min_lsn=<the write's LSN>`; lag = replica answer time - primary acknowledgement time. It is
// an upper bound of the true lag (it includes one loopback HTTP round trip and the replica's
// 1 ms min_lsn poll).
// Group commit (counters, not timing): over a setup's unpaced runs, each node's WAL fsyncs and
// records per fsync, from its `/metrics` (aerodb_fsyncs_total, aerodb_group_commit_records_total),
// so a replica that syncs once per received batch instead of once per flush shows.

import AeroCore
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct ServerBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Commit throughput, p50/p99 latency and replication lag of aerodb serve on loopback.")

    @Option(help: "The aerodb executable (a release build).")
    var aerodb = ".build/release/aerodb"
    @Option(help: "Directory for the nodes' data dirs and logs; emptied first.")
    var dir = "/tmp/aerodb-bench-server"
    @Option(parsing: .upToNextOption, help: "Concurrent HTTP client counts.")
    var clients: [Int] = [1, 16, 64]
    @Option(help: "Seconds of load per client count.")
    var seconds: Double = 3
    @Option(help: "Value size in bytes.")
    var valueBytes = 100
    @Option(parsing: .upToNextOption, help: "Setups: standalone, async, sync.")
    var setups: [String] = ["standalone", "async", "sync"]

    func validate() throws {
        guard clients.allSatisfy({ $0 > 0 && $0 <= 256 }) else { throw ValidationError("--clients: 1...256") }
        guard seconds > 0 && seconds <= 600 else { throw ValidationError("--seconds: (0, 600]") }
        guard setups.allSatisfy({ ["standalone", "async", "sync"].contains($0) }) else { throw ValidationError("--setups: standalone, async, sync") }
    }

    func run() throws {
        print("aerodb-bench server: \(aerodb), \(valueBytes)-byte values, \(seconds) s per point, on 127.0.0.1")
        print("setup       clients   commits/s    p50 ms    p99 ms")
        for setup in setups {
            let cluster = try BenchCluster(aerodb: aerodb, root: dir + "/" + setup, setup: setup)
            defer { cluster.stop() }
            var best = 0.0
            let before = try cluster.httpPorts.map { try GroupCommitCounts.read(port: $0) }
            for count in clients {
                let r = try Load.run(port: cluster.httpPorts[0], clients: count, seconds: seconds, valueBytes: valueBytes,
                                     keyPrefix: "c\(count)", ratePerSecond: nil)
                best = max(best, r.rate)
                print(String(format: "%@ %8d %11.0f %9.2f %9.2f", setup.padding(toLength: 10, withPad: " ", startingAt: 0) as NSString, count, r.rate, r.p50Ms, r.p99Ms))
            }
            for (i, port) in cluster.httpPorts.enumerated() {
                let after = try GroupCommitCounts.read(port: port)
                let fsyncs = after.fsyncs - before[i].fsyncs
                let records = after.records - before[i].records
                print(String(format: "  n%d (%@): %.0f WAL fsyncs, %.1f records per fsync over the unpaced runs", i + 1,
                             i == 0 ? "primary" : "replica", fsyncs, fsyncs > 0 ? records / fsyncs : 0))
            }
            if cluster.httpPorts.count > 1 {
                let lag = try Load.lag(primary: cluster.httpPorts[0], replica: cluster.httpPorts[1], clients: 16,
                                       rate: best / 2, seconds: seconds, valueBytes: valueBytes)
                print(String(format: "%@ lag at %.0f commits/s (half of best): p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d probes; achieved %.0f/s)",
                             setup.padding(toLength: 10, withPad: " ", startingAt: 0) as NSString, best / 2, lag.p50Ms, lag.p99Ms, lag.maxMs, lag.probes, lag.achievedRate))
            }
        }
    }
}

/// Processes of one setup: n1 (primary) and, unless standalone, n2 (its replica).
final class BenchCluster {
    var processes: [Process] = []
    var httpPorts: [Int] = []

    init(aerodb: String, root: String, setup: String) throws {
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let nodes = setup == "standalone" ? 1 : 2
        httpPorts = try (0..<nodes).map { _ in try Self.freePort() }
        let peers = try (0..<nodes).map { _ in try Self.freePort() }
        for i in 0..<nodes {
            let args: [String]
            if nodes == 1 {
                args = ["serve", "--data-dir", root + "/n1", "--id", "n1", "--http", "127.0.0.1:\(httpPorts[0])"]
            } else {
                let members = (0..<nodes).map { #"{"id":"n\#($0 + 1)","http":"127.0.0.1:\#(httpPorts[$0])","peer":"127.0.0.1:\#(peers[$0])"}"# }
                let sync = setup == "sync" ? #","sync_replicas":["n2"]"# : ""
                let config = """
                    {"id":"n\(i + 1)","data_dir":"n\(i + 1)","http":"127.0.0.1:\(httpPorts[i])","peer":"127.0.0.1:\(peers[i])",
                     "members":[\(members.joined(separator: ","))],"commit_mode":"\(setup)"\(sync),"initial_primary":"n1"}
                    """
                try config.write(toFile: root + "/n\(i + 1).json", atomically: true, encoding: .utf8)
                args = ["serve", "--config", root + "/n\(i + 1).json"]
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: aerodb)
            process.arguments = args
            _ = FileManager.default.createFile(atPath: root + "/n\(i + 1).log", contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/n\(i + 1).log"))
            process.standardOutput = log
            process.standardError = log
            try process.run()
            processes.append(process)
        }
        for (i, port) in httpPorts.enumerated() {
            var up = false
            for _ in 0..<3000 where !up {
                if let c = try? HTTPConnection(port: port), (try? c.request("GET", "/v1/status"))?.status == 200 { up = true } else { usleep(10_000) }
            }
            guard up else { stop(); throw ValidationError("node n\(i + 1) did not start; see \(root)/n\(i + 1).log") }
        }
    }

    func stop() {
        for p in processes where p.isRunning { p.terminate() }
        for p in processes { p.waitUntilExit() }
        processes = []
    }

    static func freePort() throws -> Int {
        for _ in 0..<1000 {
            let port = Int.random(in: 10_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if ok == 0 { return port }
        }
        throw ValidationError("no free port found")
    }
}


/// A node's WAL fsyncs and group-committed records so far, from its Prometheus text.
struct GroupCommitCounts {
    var fsyncs: Double
    var records: Double

    static func read(port: Int) throws -> GroupCommitCounts {
        let reply = try HTTPConnection(port: port).request("GET", "/metrics")
        guard reply.status == 200 else { throw ValidationError("GET /metrics on port \(port): \(reply.status)") }
        let text = String(decoding: reply.body, as: UTF8.self)
        return GroupCommitCounts(fsyncs: try value(text, "aerodb_fsyncs_total", port: port),
                                 records: try value(text, "aerodb_group_commit_records_total", port: port))
    }

    /// The value of the unlabelled series `name`.
    static func value(_ text: String, _ name: String, port: Int) throws -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            if let v = Double(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)) { return v }
        }
        throw ValidationError("GET /metrics on port \(port) has no series \(name)")
    }
}

/// State shared by the load threads. @unchecked: every field is guarded by `lock`.
final class LoadState: @unchecked Sendable {
    let lock = NSLock()
    var latencies: [UInt64] = []
    var failures = 0
    var lags: [UInt64] = []
    var probeError: String?
    var probeDone = false
}

enum Load {
    struct Result { var rate: Double; var p50Ms: Double; var p99Ms: Double }
    struct Lag { var p50Ms: Double; var p99Ms: Double; var maxMs: Double; var probes: Int; var achievedRate: Double }

    static func nowNs() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    static func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
    }

    /// `clients` threads writing for `seconds`; paced to `ratePerSecond` in total when given.
    static func run(port: Int, clients: Int, seconds: Double, valueBytes: Int, keyPrefix: String, ratePerSecond: Double?) throws -> Result {
        let state = LoadState()
        let lock = state.lock
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: valueBytes)
        let start = nowNs()
        let end = start + UInt64(seconds * 1e9)
        let group = DispatchGroup()
        for c in 0..<clients {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                var mine: [UInt64] = []
                guard let connection = try? HTTPConnection(port: port) else { lock.withLock { state.failures += 1 }; return }
                var i = 0
                let interval = ratePerSecond.map { UInt64(1e9 * Double(clients) / $0) }
                var next = start + UInt64(c) * (interval ?? 0) / UInt64(clients)
                while true {
                    if let interval {
                        let now = nowNs()
                        if next > now { usleep(UInt32((next - now) / 1000)) }
                        next += interval
                    }
                    let t0 = nowNs()
                    if t0 >= end { break }
                    guard let reply = try? connection.request("PUT", "/v1/kv/\(keyPrefix)-\(c)-\(i)", body: value), reply.status == 200 else {
                        lock.withLock { state.failures += 1 }
                        break
                    }
                    mine.append(nowNs() - t0)
                    i += 1
                }
                lock.withLock { state.latencies += mine }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        let elapsed = Double(nowNs() - start) / 1e9
        if state.failures > 0 { throw ValidationError("\(state.failures) client(s) failed a write") }
        let latencies = state.latencies.sorted()
        return Result(rate: Double(latencies.count) / elapsed, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99))
    }

    static func durableLSN(_ connection: HTTPConnection) throws -> Int64 {
        let reply = try connection.request("GET", "/v1/status")
        return (try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self)))?["node"]?["durable_lsn"]?.integerValue ?? -1
    }

    /// Seconds until the replica is durable through the primary's durable LSN (bounded: 300 s).
    static func waitCaughtUp(primary: Int, replica: Int) throws -> Double {
        let p = try HTTPConnection(port: primary)
        let r = try HTTPConnection(port: replica)
        let start = nowNs()
        let target = try durableLSN(p)
        while try durableLSN(r) < target {
            if nowNs() - start > 300_000_000_000 { throw ValidationError("the replica did not catch up within 300 s") }
            usleep(10_000)
        }
        return Double(nowNs() - start) / 1e9
    }

    /// Paced load at `rate` plus one probe thread measuring primary-ack -> replica-visible.
    static func lag(primary: Int, replica: Int, clients: Int, rate: Double, seconds: Double, valueBytes: Int) throws -> Lag {
        // Start from a caught-up replica: the backlog of the unpaced runs before is not lag at this rate.
        let caughtUp = try waitCaughtUp(primary: primary, replica: replica)
        print(String(format: "  (replica caught up with the earlier unpaced runs in %.2f s)", caughtUp))
        let state = LoadState()
        let lock = state.lock
        let end = nowNs() + UInt64(seconds * 1e9)
        let probe = Thread {
            do {
                let p = try HTTPConnection(port: primary)
                let r = try HTTPConnection(port: replica)
                var i = 0
                while nowNs() < end {
                    let w = try p.request("PUT", "/v1/kv/probe-\(i)", body: [1])
                    let acked = nowNs()
                    guard w.status == 200, let json = try? JSONParser.parse(String(decoding: w.body, as: UTF8.self)),
                          let lsn = json["lsn"]?.integerValue else { throw ValidationError("probe write: \(w.status)") }
                    // A replica answers REPL-STALE-READ after waiting 1 s: ask again (bounded), so
                    // a lag above 1 s is measured rather than lost.
                    var read = try r.request("GET", "/v1/kv/probe-\(i)?min_lsn=\(lsn)")
                    for _ in 0..<60 where read.status == 503 { read = try r.request("GET", "/v1/kv/probe-\(i)?min_lsn=\(lsn)") }
                    let seen = nowNs()
                    guard read.status == 200 else { throw ValidationError("probe read: \(read.status) \(String(decoding: read.body, as: UTF8.self))") }
                    lock.withLock { state.lags.append(seen - acked) }
                    i += 1
                    usleep(2_000)
                }
            } catch {
                lock.withLock { state.probeError = "\(error)" }
            }
            lock.withLock { state.probeDone = true }
        }
        probe.start()
        let load = try run(port: primary, clients: clients, seconds: seconds, valueBytes: valueBytes, keyPrefix: "lag", ratePerSecond: rate)
        // The probe's last read may wait for a lagging replica: bounded by its 60 re-asks.
        while !lock.withLock({ state.probeDone }) && nowNs() < end + 120_000_000_000 { usleep(10_000) }
        let (sorted, failure) = lock.withLock { (state.lags.sorted(), state.probeError) }
        if let failure { throw ValidationError("lag probe: \(failure)") }
        return Lag(p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: percentile(sorted, 1.0),
                   probes: sorted.count, achievedRate: load.rate)
    }
}
