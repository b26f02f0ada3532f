// PromoteBenchmark.swift — `aerodb-bench promote`: time from a promote request to the first
// client write accepted at the new epoch, over repeated live switchovers and failovers of
// `aerodb serve` processes on loopback (policy evaluation included: --policy-dir).
//
// A three-node sync cluster (n1 primary; zones a, b, c). `--topology default` (the default) is
// what `aerodb local-cluster start` writes: sync_replicas every member, sync_quorum 1 (ANY 1 of
// the two replicas); `two-sync` makes n2 and n3 both acknowledge every write. Switchovers
// alternate the primary between n2 and n1. Each failover round: kill -9 n1 (the primary),
// promote n2 with kind failover, write; then restart n1, re-point it (`POST /v1/admin/follow`)
// and switch over back to n1, ready for the next round. A sample is: request sent -> promote
// answered "promoted" -> `PUT` on the new primary answered 200 with the new epoch.

import AeroCore
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct PromoteBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Promote request -> first write at the new epoch: p50/p99 over repeated switchovers and failovers on loopback.")

    @Option(help: "The aerodb executable (a release build).")
    var aerodb = ".build/release/aerodb"
    @Option(help: "Directory for the nodes' data dirs and logs; emptied first.")
    var dir = "/tmp/aerodb-bench-promote"
    @Option(help: "The policy directory the nodes decide with.")
    var policyDir = "policies"
    @Option(help: "Switchovers to time.")
    var switchovers = 50
    @Option(help: "Failovers to time.")
    var failovers = 10
    @Option(help: "default (local-cluster's: ANY 1 of the other members) or two-sync (n2 and n3 both acknowledge).")
    var topology = "default"

    func validate() throws {
        guard (1...10_000).contains(switchovers), (0...1_000).contains(failovers) else {
            throw ValidationError("--switchovers 1...10000, --failovers 0...1000")
        }
        guard ["default", "two-sync"].contains(topology) else { throw ValidationError("--topology: default or two-sync, got \(topology)") }
    }

    func run() throws {
        let cluster = try PromoteBenchCluster(aerodb: aerodb, root: dir, policyDir: URL(fileURLWithPath: policyDir).path, topology: topology)
        defer { cluster.stop() }
        var epoch: Int64 = 1
        var primary = 0
        var switchSamples: [UInt64] = [], switchPromoteOnly: [UInt64] = []
        _ = try cluster.put(0, "warm", epoch: 1)
        for i in 0..<switchovers {
            let candidate = primary == 0 ? 1 : 0
            let (total, promoteOnly) = try cluster.timedPromotion(candidate, kind: "switchover", key: "s\(i)", epoch: epoch + 1)
            epoch += 1
            primary = candidate
            switchSamples.append(total)
            switchPromoteOnly.append(promoteOnly)
        }
        if primary != 0 {
            _ = try cluster.timedPromotion(0, kind: "switchover", key: "back", epoch: epoch + 1)
            epoch += 1
        }
        var failSamples: [UInt64] = [], failPromoteOnly: [UInt64] = []
        for i in 0..<failovers {
            cluster.kill9(0)
            let (total, promoteOnly) = try cluster.timedPromotion(1, kind: "failover", key: "f\(i)", epoch: epoch + 1)
            epoch += 1
            failSamples.append(total)
            failPromoteOnly.append(promoteOnly)
            try cluster.start(0)
            try cluster.follow(0, primary: 1)
            _ = try cluster.timedPromotion(0, kind: "switchover", key: "fb\(i)", epoch: epoch + 1)
            epoch += 1
        }
        print("aerodb-bench promote: \(aerodb), policies \(policyDir), 3 nodes sync (\(topology)) on 127.0.0.1; failovers keep the old primary dead until the first write is acknowledged")
        print("kind         samples   to first write p50 ms  p99 ms  max ms   promote answered p50 ms  p99 ms")
        for (name, samples, only) in [("switchover", switchSamples, switchPromoteOnly), ("failover", failSamples, failPromoteOnly)] where !samples.isEmpty {
            let s = samples.sorted(), o = only.sorted()
            print(String(format: "%-12@ %7d   %21.2f %7.2f %7.2f   %22.2f %7.2f", name as NSString, s.count,
                         PromoteBench.percentile(s, 0.50), PromoteBench.percentile(s, 0.99), Double(s.last!) / 1e6,
                         PromoteBench.percentile(o, 0.50), PromoteBench.percentile(o, 0.99)))
        }
        PromoteBreakdown.print(journals: (1...3).map { dir + "/n\($0)/events.jsonl" })
    }
}

final class PromoteBenchCluster {
    let aerodb: String
    let root: String
    var processes: [Process?] = [nil, nil, nil]
    var httpPorts: [Int] = []

    init(aerodb: String, root: String, policyDir: String, topology: String) throws {
        self.aerodb = aerodb
        self.root = root
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        httpPorts = try (0..<3).map { _ in try PromoteBench.freePort() }
        let peers = try (0..<3).map { _ in try PromoteBench.freePort() }
        let zones = ["a", "b", "c"]
        let members = (0..<3).map {
            #"{"id":"n\#($0 + 1)","http":"127.0.0.1:\#(httpPorts[$0])","peer":"127.0.0.1:\#(peers[$0])","labels":{"zone":"\#(zones[$0])"}}"#
        }
        let durability = topology == "default" ? #""sync_replicas":["n1","n2","n3"],"sync_quorum":1"# : #""sync_replicas":["n2","n3"]"#
        for i in 0..<3 {
            let config = """
                {"id":"n\(i + 1)","data_dir":"n\(i + 1)","http":"127.0.0.1:\(httpPorts[i])","peer":"127.0.0.1:\(peers[i])",
                 "members":[\(members.joined(separator: ","))],"commit_mode":"sync",\(durability),
                 "initial_primary":"n1","policy_dir":"\(policyDir)",
                 "timeouts":{"heartbeat_interval_ms":20,"facts_gather_timeout_ms":500}}
                """
            try config.write(toFile: root + "/n\(i + 1).json", atomically: true, encoding: .utf8)
        }
        for i in 0..<3 { try start(i) }
    }

    func start(_ index: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: aerodb)
        process.arguments = ["serve", "--config", root + "/n\(index + 1).json"]
        let logPath = root + "/n\(index + 1).log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        processes[index] = process
        for _ in 0..<3000 {
            if let c = try? HTTPConnection(port: httpPorts[index]), (try? c.request("GET", "/v1/status"))?.status == 200 { return }
            usleep(10_000)
        }
        throw ValidationError("node n\(index + 1) did not start; see \(logPath)")
    }

    func kill9(_ index: Int) {
        guard let process = processes[index] else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        processes[index] = nil
    }

    func stop() {
        for p in processes.compactMap({ $0 }) where p.isRunning { p.terminate() }
        for p in processes.compactMap({ $0 }) { p.waitUntilExit() }
    }

    func put(_ index: Int, _ key: String, epoch: Int64) throws -> Bool {
        let reply = try HTTPConnection(port: httpPorts[index]).request("PUT", "/v1/kv/\(key)", body: Array("v".utf8))
        guard reply.status == 200, let json = try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self)) else { return false }
        return json["epoch"]?.integerValue == epoch
    }

    /// Waits (untimed, bounded) until `index` heard from its primary in this session and says it
    /// is not recovering: a replica re-pointed by the previous promotion may still be catching
    /// up, and WAL-1 refuses it as a candidate.
    func awaitCaughtUp(_ index: Int) throws {
        for _ in 0..<2_000 {
            if let reply = try? HTTPConnection(port: httpPorts[index]).request("GET", "/v1/status"), reply.status == 200,
               let json = try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self)),
               let node = json["node"], node["recovering"] == .bool(false),
               node["role"]?.stringValue != "replica" || (node["last_contact_ms"] ?? .null) != .null { return }
            usleep(2_000)
        }
        throw ValidationError("n\(index + 1) kept recovering")
    }

    /// (request -> first write at `epoch` accepted, request -> promote answered), nanoseconds.
    func timedPromotion(_ candidate: Int, kind: String, key: String, epoch: Int64) throws -> (UInt64, UInt64) {
        try awaitCaughtUp(candidate)
        let body = Array(#"{"kind":"\#(kind)","requested_by":"bench"}"#.utf8)
        let connection = try HTTPConnection(port: httpPorts[candidate])
        let started = PromoteBench.nowNs()
        let reply = try connection.request("POST", "/v1/admin/promote", body: body)
        let answered = PromoteBench.nowNs()
        let text = String(decoding: reply.body, as: UTF8.self)
        guard reply.status == 200, text.contains("\"outcome\":\"promoted\"") else {
            throw ValidationError("promotion of n\(candidate + 1) (\(kind)) was not done: \(reply.status) \(text)")
        }
        let writer = try HTTPConnection(port: httpPorts[candidate])
        for _ in 0..<1000 {
            let put = try writer.request("PUT", "/v1/kv/\(key)", body: Array("v".utf8))
            if put.status == 200, let json = try? JSONParser.parse(String(decoding: put.body, as: UTF8.self)), json["epoch"]?.integerValue == epoch {
                return (PromoteBench.nowNs() - started, answered - started)
            }
        }
        throw ValidationError("n\(candidate + 1) accepted no write at epoch \(epoch)")
    }

    /// Re-points `index` at `primary` with the primary's current epoch history.
    func follow(_ index: Int, primary: Int) throws {
        let status = try HTTPConnection(port: httpPorts[primary]).request("GET", "/v1/status")
        let json = try JSONParser.parse(String(decoding: status.body, as: UTF8.self))
        guard let node = json["node"], let id = node["id"], let epoch = node["epoch"], let history = json["epoch_history"] else {
            throw ValidationError("n\(primary + 1) answered no status")
        }
        let body = JSONValue.object(["primary": id, "epoch": epoch, "history": history])
        let reply = try HTTPConnection(port: httpPorts[index]).request("POST", "/v1/admin/follow", body: Array(body.canonicalJSON.utf8))
        guard reply.status == 200 else {
            throw ValidationError("n\(index + 1) refused to follow: \(String(decoding: reply.body, as: UTF8.self))")
        }
    }
}

/// Ports and timing helpers of this benchmark (the HTTP client is BenchHTTPConnection.swift).
enum PromoteBench {
    static func loopback(_ port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// A port below the ephemeral range that is free now (bounded random search).
    static func freePort() throws -> Int {
        for _ in 0..<1000 {
            let port = Int.random(in: 10_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = loopback(port)
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if ok == 0 { return port }
        }
        throw ValidationError("no free port found")
    }

    static func nowNs() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// The `p` quantile of sorted nanoseconds, in milliseconds.
    static func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
    }
}
