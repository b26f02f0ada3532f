import AeroCore
import AeroServer
import ArgumentParser
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

#if canImport(Glibc)
    import Glibc
#endif

// `aerodb local-cluster start|status|stop --dir DIR`: a cluster of background `aerodb serve`
// processes on 127.0.0.1 for trying AeroDB and for demos. Node i (1-based) is n<i>, HTTP on
// base-port + i, peer on base-port + 100 + i; n1 is the initial primary. DIR holds n<i>.json
// (its config), n<i>/ (its data dir), n<i>.log and n<i>.pid.

struct LocalClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local-cluster",
        abstract: "Start, inspect or stop a cluster of background nodes on 127.0.0.1.",
        subcommands: [LocalClusterStart.self, LocalClusterStatus.self, LocalClusterStop.self]
    )
}

enum LocalCluster {
    /// Nodes a local cluster may have: ports base+1...base+N and base+101...base+100+N.
    static let nodesMax = 9
    /// Bound on waiting for every node to report listening.
    static let startWaitMs = 60_000
    /// Bound on waiting for a node to exit after SIGTERM, before SIGKILL.
    static let stopWaitMs = 10_000

    static func path(_ dir: String, _ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    /// Polls `GET /v1/status` on 127.0.0.1:`port` until `cluster.streaming_replicas` has
    /// `replicas` members; false when `timeoutMs` passed first (a monotonic deadline).
    static func waitStreaming(port: Int, replicas: Int, timeoutMs: Int) -> Bool {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMs) * 1_000_000
        let url = URL(string: "http://127.0.0.1:\(port)/v1/status")!
        while DispatchTime.now().uptimeNanoseconds < deadline {
            let done = DispatchSemaphore(value: 0)
            let seen = StreamingCount()
            URLSession.shared.dataTask(with: URLRequest(url: url, timeoutInterval: 2)) { data, _, _ in
                if let data, let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)) {
                    seen.set(json["cluster"]?["streaming_replicas"]?.arrayValue?.count ?? 0)
                }
                done.signal()
            }.resume()
            done.wait()
            if seen.get() >= replicas { return true }
            usleep(20_000)
        }
        return false
    }

    /// Node ids with a config in `dir`, in order.
    static func nodes(in dir: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix("n") && $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    static func pid(_ dir: String, _ node: String) -> pid_t? {
        (try? String(contentsOfFile: path(dir, node + ".pid"), encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Running: the process exists and is not a zombie (an exited node whose parent — often
    /// PID 1 in a container — has not reaped it yet).
    static func alive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// True when binding 127.0.0.1:`port` fails with EADDRINUSE (someone listens there). The
    /// probe socket is closed at once; SO_REUSEADDR as the nodes' own listeners use it, so a
    /// port left in TIME_WAIT by a stopped cluster does not count as in use.
    static func portInUse(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result != 0 && errno == EADDRINUSE
    }

    /// This executable, to start `serve` children with the same build.
    static func selfExecutable() -> URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }

    /// SIGTERM, wait (bounded), then SIGKILL. Returns how it ended.
    static func stop(_ pid: pid_t) -> String {
        guard alive(pid) else { return "not running" }
        kill(pid, SIGTERM)
        for _ in 0..<(stopWaitMs / 10) where alive(pid) { usleep(10_000) }
        if alive(pid) {
            kill(pid, SIGKILL)
            return "killed (no exit within \(stopWaitMs) ms of SIGTERM)"
        }
        return "stopped"
    }
}

/// The streaming count a status callback saw.
final class StreamingCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func set(_ value: Int) { lock.withLock { count = value } }
    func get() -> Int { lock.withLock { count } }
}

struct LocalClusterStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Write configs and start the nodes; return when all serve.")

    @Option(name: .long, help: "Number of nodes (1...\(LocalCluster.nodesMax)).") var nodes: Int = 3
    @Option(name: .long, help: "Directory for configs, data, logs and pid files.") var dir: String
    @Option(name: .customLong("base-port"), help: "Node i serves HTTP on base+i and peers on base+100+i.") var basePort: Int
    @Option(name: .customLong("commit-mode"), help: "sync or async (default sync, async for one node).") var commitMode: String?
    @Option(name: .customLong("sync-replica"), help: "A member that may acknowledge writes (repeatable; default every member).") var syncReplicas: [String] = []
    @Option(name: .customLong("sync-quorum"), help: "How many of them must acknowledge each write: ANY k (default 1).") var syncQuorum: Int?
    @Option(name: .customLong("policy-dir"), help: "Site promotion policies every node runs (default: none).") var policyDir: String?
    @Option(name: .long, help: "The cluster's name (cluster_name; the facts' cluster.name).") var name: String = ServerConfig.clusterNameDefault

    func validate() throws {
        guard (1...LocalCluster.nodesMax).contains(nodes) else { throw ValidationError("--nodes must be 1...\(LocalCluster.nodesMax)") }
        guard basePort > 0, basePort + 100 + nodes <= 65535 else { throw ValidationError("--base-port leaves ports outside 1...65535") }
        if let commitMode, commitMode != "sync" && commitMode != "async" { throw ValidationError("--commit-mode: sync or async") }
        if nodes == 1 && commitMode == "sync" { throw ValidationError("a one-node cluster has no sync replica") }
        if let syncQuorum, syncQuorum < 1 { throw ValidationError("--sync-quorum must be at least 1") }
        if let problem = ServerConfig.clusterNameProblem(name) { throw ValidationError("--name: \(problem)") }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for node in LocalCluster.nodes(in: dir) {
            if let pid = LocalCluster.pid(dir, node), LocalCluster.alive(pid) {
                throw ValidationError("\(node) is already running (pid \(pid)); run `aerodb local-cluster stop --dir \(dir)` first")
            }
        }
        let ids = (1...nodes).map { "n\($0)" }
        let mode = commitMode ?? (nodes == 1 ? "async" : "sync")
        // Default durability: ANY 1 of the other members, whichever is primary (3 nodes: either
        // replica acknowledges; 2 nodes: the one replica). EpochDurability.swift, rule D1.
        let sync = mode == "sync" ? (syncReplicas.isEmpty ? ids : syncReplicas) : []
        let quorum = mode == "sync" ? (syncQuorum ?? (syncReplicas.isEmpty ? 1 : nil)) : nil
        let members = ids.enumerated().map { i, id in
            // Each node in its own zone, so zone-aware policies have facts to read.
            JSONValue.object(["id": .string(id), "http": .string("127.0.0.1:\(basePort + i + 1)"), "peer": .string("127.0.0.1:\(basePort + 101 + i)"),
                              "labels": .object(["zone": .string("zone-\(i + 1)")])])
        }
        // A port another process holds would only show as one node's bind error in its log:
        // check them all first and name the node, the listener and the address.
        for (i, id) in ids.enumerated() {
            for (listener, port) in [("HTTP", basePort + i + 1), ("peer", basePort + 101 + i)] where LocalCluster.portInUse(port) {
                FileHandle.standardError.write(Data("aerodb local-cluster: \(id)'s \(listener) address 127.0.0.1:\(port) is already in use (another process listens there); stop it or choose another --base-port\n".utf8))
                throw ExitCode(1)
            }
        }
        var started: [pid_t] = []
        var children: [Process] = []
        for (i, id) in ids.enumerated() {
            var config: [String: JSONValue] = [
                "id": .string(id), "data_dir": .string(id), "http": .string("127.0.0.1:\(basePort + i + 1)"),
                "peer": .string("127.0.0.1:\(basePort + 101 + i)"), "commit_mode": .string(mode),
                "cluster_name": .string(name),
            ]
            if nodes > 1 {
                config["members"] = .array(members)
                config["initial_primary"] = .string("n1")
            }
            if !sync.isEmpty { config["sync_replicas"] = .array(sync.map { .string($0) }) }
            if let quorum { config["sync_quorum"] = .integer(Int64(quorum)) }
            if let policyDir {
                let absolute = policyDir.hasPrefix("/") ? policyDir : FileManager.default.currentDirectoryPath + "/" + policyDir
                config["policy_dir"] = .string(absolute)
            }
            let configPath = LocalCluster.path(dir, id + ".json")
            try (JSONValue.object(config).prettyJSON + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
            let logPath = LocalCluster.path(dir, id + ".log")
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            let process = Process()
            process.executableURL = LocalCluster.selfExecutable()
            process.arguments = ["serve", "--config", configPath]
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            try process.run()
            children.append(process)
            started.append(process.processIdentifier)
            try "\(process.processIdentifier)\n".write(toFile: LocalCluster.path(dir, id + ".pid"), atomically: true, encoding: .utf8)
        }
        // Wait until every log says it listens (bounded), or stop them all and fail.
        for (i, id) in ids.enumerated() {
            var ready = false
            for _ in 0..<(LocalCluster.startWaitMs / 10) where !ready {
                let log = (try? String(contentsOfFile: LocalCluster.path(dir, id + ".log"), encoding: .utf8)) ?? ""
                ready = log.contains("listening on http://")
                if !ready && !LocalCluster.alive(started[i]) { break }
                if !ready { usleep(10_000) }
            }
            if !ready {
                // Our own children: terminate and reap them.
                for child in children where child.isRunning { child.terminate() }
                for child in children { child.waitUntilExit() }
                let log = (try? String(contentsOfFile: LocalCluster.path(dir, id + ".log"), encoding: .utf8)) ?? ""
                FileHandle.standardError.write(Data("aerodb local-cluster: \(id) did not start; its log:\n\(log.suffix(2000))\n".utf8))
                throw ExitCode(1)
            }
        }
        // In sync mode the first write needs its quorum connected: wait (bounded) until the
        // primary reports every replica streaming, so that "all serve" means writes succeed.
        if nodes > 1, !LocalCluster.waitStreaming(port: basePort + 1, replicas: nodes - 1, timeoutMs: LocalCluster.startWaitMs) {
            FileHandle.standardError.write(Data("aerodb local-cluster: n1 does not report its \(nodes - 1) replicas streaming yet; see the logs in \(dir)\n".utf8))
        }
        for (i, id) in ids.enumerated() {
            print("\(id)  http 127.0.0.1:\(basePort + i + 1)  peer 127.0.0.1:\(basePort + 101 + i)  pid \(started[i])\(i == 0 ? "  primary" : "")")
        }
        print("commit mode \(mode)\(sync.isEmpty ? "" : ", sync replicas \(sync.joined(separator: ","))"); stop with: aerodb local-cluster stop --dir \(dir)")
    }
}

struct LocalClusterStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each node's process and whether it runs.")
    @Option(name: .long, help: "The cluster's directory.") var dir: String

    func run() throws {
        let nodes = LocalCluster.nodes(in: dir)
        guard !nodes.isEmpty else { throw ValidationError("no local cluster in \(dir)") }
        for node in nodes {
            let pid = LocalCluster.pid(dir, node)
            let state = pid.map { LocalCluster.alive($0) ? "running (pid \($0))" : "not running" } ?? "not started"
            let config = (try? String(contentsOfFile: LocalCluster.path(dir, node + ".json"), encoding: .utf8)).flatMap { try? JSONParser.parse($0) }
            print("\(node)  http \(config?["http"]?.stringValue ?? "?")  \(state)")
        }
    }
}

struct LocalClusterStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop every node (SIGTERM, then SIGKILL after a bound).")
    @Option(name: .long, help: "The cluster's directory.") var dir: String

    func run() throws {
        let nodes = LocalCluster.nodes(in: dir)
        guard !nodes.isEmpty else { throw ValidationError("no local cluster in \(dir)") }
        for node in nodes {
            guard let pid = LocalCluster.pid(dir, node) else { continue }
            print("\(node)  \(LocalCluster.stop(pid))")
            try? FileManager.default.removeItem(atPath: LocalCluster.path(dir, node + ".pid"))
        }
    }
}
