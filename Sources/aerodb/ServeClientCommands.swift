import AeroCore
import AeroServer
import ArgumentParser
import Foundation

// `aerodb status|get|put|delete --addr HOST:PORT`: the client HTTP API for the shell.
// Exit codes: 0 done; 1 the server answered with an error (its JSON body on standard error);
// 2 no answer (connection refused, timeout, unusable address).

struct RemoteOptions: ParsableArguments {
    @Option(name: .long, help: "The node's HTTP address, host:port.")
    var addr: String

    /// Bound on one request: the server's own waits (sync commit, min_lsn) are shorter.
    @Option(name: .customLong("timeout-ms"), help: "Give up after this many milliseconds.")
    var timeoutMs: Int = 30_000

    func validate() throws {
        if case .failure(let error) = NodeAddress.parse(addr) { throw ValidationError(error.message) }
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be positive") }
    }

    /// Sends one request; prints nothing. Throws ExitCode(2) when no answer came. A plain
    /// socket client (AeroServer's PlainHTTPClient), not URLSession: starting libcurl cost
    /// every command tens of milliseconds (docs/benchmarks.md, "Promotion latency").
    func send(_ method: String, _ path: String, body: Data? = nil) async throws -> (status: Int, body: Data, headers: [String: String]) {
        try await send(method, path, body: body, onNoAnswer: { _ in })
    }

    /// True when `error` shows the request never reached the node (no connection was made), so
    /// nothing it asked for can have happened.
    static func neverSent(_ error: PlainHTTPClient.HTTPClientError) -> Bool { error.stage == .connect }

    /// `send`, calling `onNoAnswer` with the transport error before it exits 2.
    func send(_ method: String, _ path: String, body: Data? = nil,
              onNoAnswer: (PlainHTTPClient.HTTPClientError) -> Void) async throws -> (status: Int, body: Data, headers: [String: String]) {
        guard case .success(let target) = NodeAddress.parse(addr) else {
            FileHandle.standardError.write(Data("aerodb: cannot form a URL from --addr \(addr)\n".utf8))
            throw ExitCode(2)
        }
        do {
            let reply = try await PlainHTTPClient.send(method, host: target.host, port: target.port, path: path, body: body.map { Array($0) },
                                                       timeoutMs: UInt64(timeoutMs))
            return (reply.status, Data(reply.body), reply.headers)
        } catch {
            FileHandle.standardError.write(Data("aerodb: no answer from \(addr): \(Self.explain(error))\n".utf8))
            onNoAnswer(error)
            throw ExitCode(2)
        }
    }

    /// The transport error in words, with a hint where the cause is usually the address: a
    /// connection that closes without an HTTP reply is most often a node's peer port.
    static func explain(_ error: PlainHTTPClient.HTTPClientError) -> String {
        switch error.stage {
        case .answer:
            return "\(error.message) (the address accepted the connection but sent no HTTP answer: is it a node's peer port? --addr wants the node's HTTP address)"
        case .connect:
            return "\(error.message) (nothing listens there: is the node running, and is this its HTTP port?)"
        case .timeout:
            return "\(error.message) (no answer within --timeout-ms)"
        }
    }

    /// The answer's body as JSON; an answer that is not JSON exits 2 (it is no node's answer).
    func json(_ reply: (status: Int, body: Data, headers: [String: String])) throws -> JSONValue {
        guard let json = try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self)) else {
            FileHandle.standardError.write(Data("aerodb: \(addr) answered something that is not JSON\n".utf8))
            throw ExitCode(2)
        }
        return json
    }

    /// A 2xx passes; anything else prints the server's error body and exits 1.
    func check(_ reply: (status: Int, body: Data, headers: [String: String])) throws {
        guard (200..<300).contains(reply.status) else {
            FileHandle.standardError.write(reply.body)
            throw ExitCode(1)
        }
    }
}

/// A key as one path segment: everything but unreserved characters is percent-encoded, `/` too.
func encodedKey(_ key: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key
}

struct RemoteStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a node's facts, cluster view and epoch history.",
        discussion: "JSON by default (every field); --format text prints the authority summary an operator reads first.")
    @OptionGroup var remote: RemoteOptions
    @Option(name: .long, help: "Output format: json (every field) or text (role, epoch, durability, fence, promise, positions).")
    var format: PromoteFormat = .json

    func run() async throws {
        let reply = try await remote.send("GET", "/v1/status")
        try remote.check(reply)
        let text = String(decoding: reply.body, as: UTF8.self)
        guard let json = try? JSONParser.parse(text) else {
            print(text)
            return
        }
        switch format {
        case .json: print(json.prettyJSON)
        case .text: print(Self.summary(json), terminator: "")
        }
    }

    /// The lines an operator needs at 3 a.m.: who this node is, what authority it holds, what it
    /// waits for, whether it is fenced and what lifts it, and where its log stands.
    static func summary(_ json: JSONValue) -> String {
        let node = json["node"] ?? .null
        func text(_ value: JSONValue?) -> String {
            guard let value, value != .null else { return "none" }
            return value.stringValue ?? value.integerValue.map(String.init) ?? value.canonicalJSON
        }
        var out = "node:        \(text(node["id"])) (\(text(node["role"])) of epoch \(text(node["epoch"])))\n"
        if let following = node["following"]?.stringValue { out += "following:   \(following)\n" }
        if let durability = json["cluster"]?["durability"], durability != .null {
            let set = (durability["set"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ")
            out += "durability:  ANY \(text(durability["quorum"])) of (\(set))\n"
        } else {
            out += "durability:  none (async: the primary alone acknowledges)\n"
        }
        if let streaming = json["cluster"]?["streaming_replicas"]?.arrayValue {
            out += "streaming:   \(streaming.isEmpty ? "none" : streaming.compactMap(\.stringValue).joined(separator: ", "))\n"
        }
        if let fence = json["fence"], fence != .null {
            var line = "FENCED at epoch \(text(fence["epoch"]))"
            if let candidate = fence["candidate"]?.stringValue { line += " for \(candidate)'s switchover to epoch \(text(fence["to_epoch"]))" }
            if let attempt = fence["attempt"]?.stringValue { line += ", attempt \(attempt)" }
            if let since = fence["since"]?.stringValue { line += ", since \(since)" }
            if let cause = fence["cause"]?.stringValue, fence["candidate"]?.stringValue == nil { line += " (\(cause))" }
            out += "fence:       \(line); writes are refused (REPL-FENCED); `aerodb unfence` lifts it after a failed switchover\n"
        } else {
            out += "fence:       none\n"
        }
        if let promise = json["epoch_promise"], promise != .null {
            out += "promise:     epoch \(text(promise["epoch"])) promised to \(text(promise["candidate"]))\n"
        } else {
            out += "promise:     none\n"
        }
        out += "positions:   durable \(text(node["durable_lsn"])), applied \(text(node["applied_lsn"])), acked \(text(node["acked_lsn"]))"
        if node["primary_acked_lsn"] != nil && node["primary_acked_lsn"] != .null { out += ", primary acked \(text(node["primary_acked_lsn"]))" }
        out += "\n"
        if let contact = node["last_contact_ms"]?.integerValue { out += "last contact: \(contact) ms ago (from its primary)\n" }
        if let failure = json["storage_failure"]?.stringValue { out += "STORAGE FAILED: \(failure)\n" }
        return out
    }
}

struct RemoteGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Print a key's value from a node; its LSN and epoch go to standard error.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The key.") var key: String
    @Option(name: .customLong("min-lsn"), help: "Read at or after this LSN, or fail (REPL-STALE-READ).") var minLSN: UInt64?

    func run() async throws {
        let query = minLSN.map { "?min_lsn=\($0)" } ?? ""
        let reply = try await remote.send("GET", "/v1/kv/\(encodedKey(key))\(query)")
        try remote.check(reply)
        // The value, then a newline (as `aerodb kv get` prints it), so the prompt starts on its own line.
        FileHandle.standardOutput.write(reply.body + Data("\n".utf8))
        let staleness = reply.headers["x-aerodb-staleness-lsn"].map { " staleness_lsn=\($0)" } ?? ""
        FileHandle.standardError.write(Data("lsn=\(reply.headers["x-aerodb-lsn"] ?? "?") epoch=\(reply.headers["x-aerodb-epoch"] ?? "?")\(staleness)\n".utf8))
    }
}

struct RemotePut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put", abstract: "Store a value on the primary; prints {\"lsn\",\"epoch\"} once durable per the commit mode.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The key.") var key: String
    @Argument(help: "The value (UTF-8 text).") var value: String

    func run() async throws {
        let reply = try await remote.send("PUT", "/v1/kv/\(encodedKey(key))", body: Data(value.utf8))
        try remote.check(reply)
        FileHandle.standardOutput.write(reply.body)
    }
}

struct RemoteDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a key on the primary; prints {\"lsn\",\"epoch\"}.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The key.") var key: String

    func run() async throws {
        let reply = try await remote.send("DELETE", "/v1/kv/\(encodedKey(key))")
        try remote.check(reply)
        FileHandle.standardOutput.write(reply.body)
    }
}
