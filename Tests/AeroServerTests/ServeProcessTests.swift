import AeroCore
import Foundation
import Testing
import AeroTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One `aerodb serve` child process on 127.0.0.1 and an ephemeral port. Killed on deinit, so a
/// failing test never leaves a server behind.
final class ServeProcess: @unchecked Sendable {
    // @unchecked: `output` is guarded by `lock`; the rest is set before the reader starts.
    /// Bound on waiting for the "listening" line: generous for a loaded CI machine.
    static let startWaitMs = 60_000

    let process = Process()
    let dataDir: String
    private let lock = NSLock()
    private var output = ""
    private(set) var port = 0

    convenience init(dataDir: String, extraArguments: [String] = []) throws {
        try self.init(arguments: ["serve", "--data-dir", dataDir, "--http", "127.0.0.1:0"] + extraArguments, dataDir: dataDir)
    }

    init(arguments: [String], dataDir: String) throws {
        self.dataDir = dataDir
        process.executableURL = builtExecutable("aerodb")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe  // diagnostics in StartError
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.output += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
        var found: Int?
        _ = Deadline.waitUntilBlocking(timeoutMs: Self.startWaitMs, pollMs: 10) {
            found = listeningPort()
            return found != nil || !process.isRunning
        }
        if let found {
            self.port = found
            return
        }
        if process.isRunning { process.terminate() }
        ChildProcess.waitOrKill(process, timeoutMs: 10_000)
        throw StartError(output: currentOutput())
    }

    struct StartError: Error, CustomStringConvertible {
        let output: String
        var description: String { "aerodb serve did not report listening; output: \(output)" }
    }

    func currentOutput() -> String {
        lock.lock()
        defer { lock.unlock() }
        return output
    }

    private func listeningPort() -> Int? {
        let text = currentOutput()
        guard let range = text.range(of: "listening on http://127.0.0.1:") else { return nil }
        let digits = text[range.upperBound...].prefix { $0.isNumber }
        return text[range.upperBound...].dropFirst(digits.count).first == "\n" ? Int(digits) : nil
    }

    /// SIGTERM and wait: a graceful stop. Returns the exit status.
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        return ChildProcess.waitOrKill(process).status
    }

    /// SIGKILL and wait: a crash.
    func crash() {
        ChildProcess.kill9(process)
    }

    deinit {
        if process.isRunning { ChildProcess.kill9(process) }
    }

    // MARK: HTTP

    struct Reply {
        let status: Int
        let body: Data
        let headers: [String: String]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSONValue? { try? JSONParser.parse(text) }
    }

    func request(_ method: String, _ path: String, body: Data? = nil) async throws -> Reply {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        return Reply(status: http.statusCode, body: data, headers: headers)
    }
}

/// Keys acknowledged by concurrent writers.
final class NSLockedKeys: @unchecked Sendable {
    // @unchecked: `keys` is guarded by `lock`.
    private let lock = NSLock()
    private var keys = Set<String>()
    func insert(_ key: String) { lock.withLock { _ = keys.insert(key) } }
    var count: Int { lock.withLock { keys.count } }
    var all: Set<String> { lock.withLock { keys } }
}

func temporaryDataDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-serve-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("data").path
}

@Suite("aerodb serve as a real process", .serialized)
struct ServeProcessTests {
    @Test("put, get, list, delete, txn, status and metrics over HTTP on loopback")
    func api() async throws {
        let dataDir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dataDir as NSString).deletingLastPathComponent) }
        let server = try ServeProcess(dataDir: dataDir)

        let put = try await server.request("PUT", "/v1/kv/greeting", body: Data("hello".utf8))
        #expect(put.status == 200)
        #expect(put.json == .object(["lsn": .integer(1), "epoch": .integer(1)]))

        let get = try await server.request("GET", "/v1/kv/greeting")
        #expect(get.status == 200 && get.text == "hello")
        #expect(get.headers["x-aerodb-lsn"] == "1" && get.headers["x-aerodb-epoch"] == "1")

        let slash = try await server.request("PUT", "/v1/kv/a%2Fb", body: Data([0, 255]))
        #expect(slash.status == 200)
        let list = try await server.request("GET", "/v1/kv?prefix=a")
        #expect(list.json?["entries"] == .array([.object(["key": .string("a/b"), "value_base64": .string("AP8=")])]))
        #expect(list.json?["truncated"] == .bool(false))

        let missing = try await server.request("GET", "/v1/kv/nothing")
        #expect(missing.status == 404 && missing.json?["error"]?["code"] == .string("REQ-NOT-FOUND"))

        let txn = try await server.request("POST", "/v1/txn", body: Data(#"{"ops":[{"op":"put","key":"x","value":"1"},{"op":"delete","key":"greeting"}],"preconditions":[{"key":"greeting","value":"hello"}]}"#.utf8))
        #expect(txn.status == 200 && txn.json?["lsn"] == .integer(3))
        let cas = try await server.request("POST", "/v1/txn", body: Data(#"{"ops":[{"op":"put","key":"x","value":"2"}],"preconditions":[{"key":"x","value":"0"}]}"#.utf8))
        #expect(cas.status == 412 && cas.json?["error"]?["code"] == .string("REQ-PRECONDITION-FAILED"))
        #expect(try await server.request("GET", "/v1/kv/x").text == "1")
        #expect(try await server.request("GET", "/v1/kv/greeting").status == 404)

        let delete = try await server.request("DELETE", "/v1/kv/x")
        #expect(delete.status == 200 && delete.json?["lsn"] == .integer(4))
        #expect(try await server.request("DELETE", "/v1/kv/x").status == 404)

        let status = try await server.request("GET", "/v1/status")
        #expect(status.json?["node"]?["role"] == .string("primary"))
        #expect(status.json?["node"]?["durable_lsn"] == .integer(4))
        #expect(status.json?["epoch_history"] == .array([.object(["epoch": .integer(1), "primary": .string("n1"), "start_lsn": .integer(1)])]))

        let stale = try await server.request("GET", "/v1/kv/x?min_lsn=1000")
        #expect(stale.status == 503 && stale.json?["error"]?["code"] == .string("REPL-STALE-READ"))
        let fresh = try await server.request("GET", "/v1/kv/a%2Fb?min_lsn=4")
        #expect(fresh.status == 200 && fresh.headers["x-aerodb-lsn"] == "4")

        let metrics = try await server.request("GET", "/metrics")
        #expect(metrics.text.contains("aerodb_commits_total 4"))
        #expect(metrics.text.contains("aerodb_refusals_total{rule=\"REPL-STALE-READ\"} 1"))
        #expect(!metrics.text.contains("aerodb_fsyncs_total 0\n"))

        #expect(server.stop() == 0, "graceful stop on SIGTERM")
        let journal = try String(contentsOfFile: (dataDir as NSString).appendingPathComponent("events.jsonl"), encoding: .utf8)
        let events = journal.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        #expect(events.map { $0["event"] } == [.string("started"), .string("refusal"), .string("stopped")])
        #expect(events[1]["fields"]?["rule"] == .string("REPL-STALE-READ"))
    }

    @Test("acknowledged writes survive SIGKILL and restart")
    func crashRestart() async throws {
        let dataDir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dataDir as NSString).deletingLastPathComponent) }
        var acknowledged: [String: String] = [:]
        do {
            let server = try ServeProcess(dataDir: dataDir)
            try await withThrowingTaskGroup(of: (String, String, Int).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let reply = try await server.request("PUT", "/v1/kv/k\(i)", body: Data("v\(i)".utf8))
                        return ("k\(i)", "v\(i)", reply.status)
                    }
                }
                for try await (key, value, status) in group where status == 200 { acknowledged[key] = value }
            }
            server.crash()
        }
        #expect(acknowledged.count == 200)
        let restarted = try ServeProcess(dataDir: dataDir)
        for (key, value) in acknowledged {
            let reply = try await restarted.request("GET", "/v1/kv/\(key)")
            #expect(reply.status == 200 && reply.text == value, "lost acknowledged \(key)")
        }
        #expect(restarted.stop() == 0)
    }

    @Test("SIGTERM under concurrent writes: the node stops cleanly and every acknowledged write survives")
    func gracefulStopUnderLoad() async throws {
        let dataDir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dataDir as NSString).deletingLastPathComponent) }
        let server = try ServeProcess(dataDir: dataDir)
        let acknowledged = NSLockedKeys()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<16 {
                group.addTask {
                    // Each client writes until the server is gone (bounded: 10,000 attempts).
                    for i in 0..<10_000 {
                        guard let reply = try? await server.request("PUT", "/v1/kv/c\(client)-\(i)", body: Data("v".utf8)) else { return }
                        if reply.status == 200 { acknowledged.insert("c\(client)-\(i)") } else { return }
                    }
                }
            }
            // Let the writers get going, then ask the node to stop while they write.
            _ = await Deadline.waitUntil(timeoutMs: 60_000) { acknowledged.count >= 200 }  // a bound against a hang
            #expect(server.stop() == 0, "graceful stop under load")
            try await group.waitForAll()
        }
        #expect(acknowledged.count >= 200)
        let restarted = try ServeProcess(dataDir: dataDir)
        let listed = try await restarted.request("GET", "/v1/kv?prefix=c").json?["entries"]?.arrayValue ?? []
        let present = Set(listed.compactMap { $0["key"]?.stringValue })
        let lost = acknowledged.all.subtracting(present)
        #expect(lost.isEmpty, "\(lost.count) acknowledged writes lost")
        #expect(restarted.stop() == 0)
        let journal = try String(contentsOfFile: (dataDir as NSString).appendingPathComponent("events.jsonl"), encoding: .utf8)
        #expect(journal.components(separatedBy: "\"event\":\"stopped\"").count - 1 == 2, "both runs journaled their stop")
    }

    @Test("a bad flag or a data dir of another node is refused before serving")
    func refusedStarts() throws {
        let bad = Process()
        bad.executableURL = builtExecutable("aerodb")
        bad.arguments = ["serve", "--data-dir", "/tmp/x", "--http", "nonsense"]
        let errors = Pipe()
        bad.standardError = errors
        bad.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try bad.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(ChildProcess.waitOrKill(bad) == ChildExit(status: 2, signaled: false))
        #expect(message.contains("command line: --http: expected host:port"))

        let dataDir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dataDir as NSString).deletingLastPathComponent) }
        let first = try ServeProcess(dataDir: dataDir)
        #expect(first.stop() == 0)
        #expect(throws: ServeProcess.StartError.self) { _ = try ServeProcess(dataDir: dataDir, extraArguments: ["--id", "n7"]) }
    }
}
