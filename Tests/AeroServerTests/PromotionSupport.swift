// PromotionSupport.swift — a three-node cluster of real `aerodb serve` processes for the
// promotion and failover tests: n1 primary of epoch 1, n2 and n3 its sync replicas, each in
// its own zone, with the shipped require-requested-by policy as the site's policy_dir.
import AeroCore
import Foundation
import Testing
import AeroTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One `aerodb serve --config` process; `environment` adds variables (fault injection).
final class PromoNode: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var output = ""

    init(config: String, environment: [String: String] = [:]) throws {
        process.executableURL = builtExecutable("aerodb")
        process.arguments = ["serve", "--config", config]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.output += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        let listening = Deadline.waitUntilBlocking(timeoutMs: ServeProcess.startWaitMs, pollMs: 10) {
            lock.withLock { output.contains("listening on http://127.0.0.1:") } || !process.isRunning
        }
        if listening, lock.withLock({ output.contains("listening on http://127.0.0.1:") }) { return }
        let text = lock.withLock { output }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        throw ServeProcess.StartError(output: text)
    }

    var currentOutput: String { lock.withLock { output } }

    func kill9() {
        ChildProcess.kill9(process)
    }

    /// Waits (bounded) for the process to exit; its status, or nil while it still runs.
    func waitExit(timeoutMs: Int) -> Int32? {
        ChildProcess.wait(process, timeoutMs: timeoutMs)?.status
    }

    deinit { kill9() }
}

final class PromoCluster: @unchecked Sendable {
    static let count = 3
    let root: String
    let http: [Int]
    let peer: [Int]
    let policyDir: String
    var nodes: [PromoNode?] = [nil, nil, nil]
    /// With `proxyPrimary`: n1's HTTP and peer addresses as n2 and n3 know them (their configs
    /// name these proxies' ports); clients and n1 itself use n1's real ports.
    let primaryProxies: [FaultProxy]

    /// `proxyPrimary`: every address of n1 in the other members' configs goes through a
    /// FaultProxy (`primaryProxies`), so a test can cut n1 off from its peers while clients
    /// still reach it. Each node's config lists the members as that node reaches them.
    /// `policies`: the shipped policies (file stems under policies/) the site's policy_dir holds.
    init(syncTimeoutMs: Int = 2_000, factsGatherTimeoutMs: Int = 500, proxyPrimary: Bool = false,
         policies: [String] = ["require-requested-by"]) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-promo-\(UUID().uuidString)").path
        policyDir = root + "/policies"
        try FileManager.default.createDirectory(atPath: policyDir, withIntermediateDirectories: true)
        let shipped = Repository.url("policies")
        for policy in policies {
            try FileManager.default.copyItem(atPath: shipped.appendingPathComponent(policy + ".lua").path, toPath: policyDir + "/\(policy).lua")
        }
        http = try (0..<Self.count).map { _ in try freeLoopbackPort() }
        peer = try (0..<Self.count).map { _ in try freeLoopbackPort() }
        primaryProxies = proxyPrimary
            ? [try FaultProxy(name: "n1-http", targetPort: http[0]), try FaultProxy(name: "n1-peer", targetPort: peer[0])]
            : []
        let zones = ["a", "b", "c"]
        for i in 0..<Self.count {
            let members = (0..<Self.count).map { m in
                let proxied = m == 0 && i != 0 && proxyPrimary
                let httpPort = proxied ? primaryProxies[0].port : http[m]
                let peerPort = proxied ? primaryProxies[1].port : peer[m]
                return #"{"id":"n\#(m + 1)","http":"127.0.0.1:\#(httpPort)","peer":"127.0.0.1:\#(peerPort)","labels":{"zone":"\#(zones[m])"}}"#
            }.joined(separator: ",")
            let config = """
                {"id":"n\(i + 1)","data_dir":"n\(i + 1)","http":"127.0.0.1:\(http[i])","peer":"127.0.0.1:\(peer[i])",
                 "members":[\(members)],"commit_mode":"sync","sync_replicas":["n2","n3"],"initial_primary":"n1",
                 "policy_dir":"\(policyDir)",
                 "timeouts":{"sync_commit_timeout_ms":\(syncTimeoutMs),"heartbeat_interval_ms":20,"facts_gather_timeout_ms":\(factsGatherTimeoutMs),
                             "switchover_catch_up_timeout_ms":2000}}
                """
            try config.write(toFile: root + "/n\(i + 1).json", atomically: true, encoding: .utf8)
        }
    }

    @discardableResult
    func start(_ index: Int, environment: [String: String] = [:]) throws -> PromoNode {
        let node = try PromoNode(config: root + "/n\(index + 1).json", environment: environment)
        nodes[index] = node
        return node
    }

    func startAll() throws {
        for i in 0..<Self.count { try start(i) }
        waitReplicasStreaming()
    }

    /// Waits (bounded, 10 s) until the primary n1 reports both replicas streaming, so that the
    /// first write of a test finds its quorum connected whatever the host's load.
    func waitReplicasStreaming() {
        _ = Deadline.waitUntilBlocking(timeoutMs: 10_000, pollMs: 20) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(http[0])/v1/status")!, timeoutInterval: 2)
            request.httpMethod = "GET"
            let done = DispatchSemaphore(value: 0)
            let count = NIOLockedBox(0)
            URLSession.shared.dataTask(with: request) { data, _, _ in
                if let data, let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)) {
                    count.set(json["cluster"]?["streaming_replicas"]?.arrayValue?.count ?? 0)
                }
                done.signal()
            }.resume()
            done.wait()
            return count.get() >= Self.count - 1
        }
    }

    func kill9(_ index: Int) {
        nodes[index]?.kill9()
        nodes[index] = nil
    }

    func stopAll() {
        for i in 0..<Self.count { kill9(i) }
        for proxy in primaryProxies { proxy.stop() }
        try? FileManager.default.removeItem(atPath: root)
    }

    var configPaths: [String] { (0..<Self.count).map { root + "/n\($0 + 1).json" } }

    /// Replaces (or with nil removes) one key of node `index`'s config file, before it starts.
    func editConfig(_ index: Int, _ path: String, _ value: JSONValue?) throws {
        let file = configPaths[index]
        let json = try JSONParser.parse(String(contentsOfFile: file, encoding: .utf8))
        try setting(json, path, value).canonicalJSON.write(toFile: file, atomically: true, encoding: .utf8)
    }

    func journal(_ index: Int) -> String {
        (try? String(contentsOfFile: root + "/n\(index + 1)/events.jsonl", encoding: .utf8)) ?? ""
    }

    // MARK: HTTP

    struct Reply: Sendable {
        var status: Int  // 0: no answer
        var json: JSONValue?
        var text: String
    }

    func request(_ index: Int, _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:],
                 timeoutMs: Int = 10_000) async -> Reply {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(http[index])\(path)")!, timeoutInterval: Double(timeoutMs) / 1000)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body.map { Data($0.utf8) }
        guard let (data, response) = try? await URLSession.shared.data(for: request), let http = response as? HTTPURLResponse else {
            return Reply(status: 0, json: nil, text: "")
        }
        let text = String(decoding: data, as: UTF8.self)
        return Reply(status: http.statusCode, json: try? JSONParser.parse(text), text: text)
    }

    func promote(_ index: Int, kind: String, dryRun: Bool = false, expectDigest: String? = nil) async -> Reply {
        var body = #"{"kind":"\#(kind)","dry_run":\#(dryRun),"requested_by":"test-operator""#
        if let expectDigest { body += #","expect_facts_digest":"\#(expectDigest)""# }
        return await request(index, "POST", "/v1/admin/promote", body: body + "}", timeoutMs: 30_000)
    }

    /// A failover as the operator runs it with n1 gone: ask n2; when n3 holds more of the log,
    /// DUR-1/DUR-2 refuse and name n3, and the operator asks n3, as the explanation says.
    /// Returns the candidate's index and its answer.
    func failOverAsOperator() async -> (candidate: Int, reply: Reply) {
        let first = await promote(1, kind: "failover")
        let sources = first.json?["decision"]?["reasons"]?.arrayValue?.compactMap { $0["source"]?.stringValue } ?? []
        if first.json?["outcome"]?.stringValue == "refused", sources.contains("rule:DUR-1") || sources.contains("rule:DUR-2"),
           first.text.contains("name n3 as the candidate") {
            return (2, await promote(2, kind: "failover"))
        }
        return (1, first)
    }

    func put(_ index: Int, _ key: String, _ value: String, headers: [String: String] = [:]) async -> Reply {
        await request(index, "PUT", "/v1/kv/\(key)", body: value, headers: headers, timeoutMs: 10_000)
    }

    /// The rule id of a refused write (`error.code`), or nil.
    static func errorCode(_ reply: Reply) -> String? { reply.json?["error"]?["code"]?.stringValue }

    /// (role, epoch) as the node reports it; nil when it does not answer.
    func role(_ index: Int) async -> (role: String, epoch: UInt64)? {
        let reply = await request(index, "GET", "/v1/status", timeoutMs: 2_000)
        guard let node = reply.json?["node"], let role = node["role"]?.stringValue, let epoch = node["epoch"]?.integerValue else { return nil }
        return (role, UInt64(epoch))
    }
}

/// A value shared with a URLSession callback.
final class NIOLockedBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T { lock.withLock { value } }
    func set(_ new: T) { lock.withLock { value = new } }
}

/// The seed of a randomised test: `AERODB_FAILOVER_SEED` replays one; printed either way.
func failoverSeed(_ test: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["AERODB_FAILOVER_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64(UInt32.max))
    print("\(test): seed \(seed) (replay with AERODB_FAILOVER_SEED=\(seed))")
    return seed
}

/// `AERODB_FAILOVER_LONG=1` runs the long mode (more rounds, every crash point).
var failoverLongMode: Bool { ProcessInfo.processInfo.environment["AERODB_FAILOVER_LONG"] == "1" }


/// Acknowledged writes, with who acknowledged them at which epoch: the checkers' input.
final class AckLog: @unchecked Sendable {
    struct Ack: Sendable {
        var key: String
        var value: String
        var node: Int
        var epoch: UInt64
        var lsn: UInt64
    }
    private let lock = NSLock()
    private var acks: [Ack] = []
    func add(_ ack: Ack) { lock.withLock { acks.append(ack) } }
    var all: [Ack] { lock.withLock { acks } }

    /// Checker: never two nodes acknowledging writes in the same epoch.
    func writersByEpoch() -> [UInt64: Set<Int>] {
        var result: [UInt64: Set<Int>] = [:]
        for ack in all { result[ack.epoch, default: []].insert(ack.node) }
        return result
    }
}

/// Every decision n`node+1` recorded replays offline with aerodb-policy eval to the same
/// canonical JSON, and with the exit code of the recorded outcome.
func replayEveryDecision(_ cluster: PromoCluster, node: Int, expected: Int) async throws {
    let list = try #require(await cluster.request(node, "GET", "/v1/admin/decisions").json?["decisions"]?.arrayValue)
    #expect(list.count == expected)
    for entry in list {
        let id = try #require(entry["id"]?.stringValue)
        let record = try #require(await cluster.request(node, "GET", "/v1/admin/decisions/\(id)").json)
        let factsPath = cluster.root + "/\(id).facts.json"
        try (try #require(record["facts"])).canonicalJSON.write(toFile: factsPath, atomically: true, encoding: .utf8)
        let eval = Process()
        eval.executableURL = builtExecutable("aerodb-policy")
        eval.arguments = ["eval", "--facts", factsPath, "--policy", cluster.policyDir, "--format", "json"]
        let pipe = Pipe()
        eval.standardOutput = pipe
        try eval.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        let evalExit = ChildProcess.waitOrKill(eval)
        let replayed = try JSONParser.parse(String(decoding: output, as: UTF8.self))
        #expect(replayed.canonicalJSON == record["decision"]?.canonicalJSON, "decision \(id) does not replay")
        #expect(evalExit == ChildExit(status: record["allowed"]?.boolValue == true ? 0 : 1, signaled: false))
    }
}
