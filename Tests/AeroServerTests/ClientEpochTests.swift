import AeroCore
import AeroStorage
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Requests carrying `X-AeroDB-Epoch` (ClientEpochMiddleware, rules CE1–CE3), on a real process.
@Suite("Client requests carrying an epoch", .serialized)
struct ClientEpochTests {
    static func send(_ node: ServeProcess, _ method: String, _ path: String, epoch: String?, body: String? = nil) async throws -> ServeProcess.Reply {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(node.port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body.map { Data($0.utf8) }
        if let epoch { request.setValue(epoch, forHTTPHeaderField: "X-AeroDB-Epoch") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return ServeProcess.Reply(status: http.statusCode, body: data, headers: [:])
    }

    @Test("a lower epoch's write is refused (REPL-STALE-EPOCH); a higher epoch from a client stops all writes; a malformed one is a bad request")
    func clientEpochs() async throws {
        let dir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A primary at epoch 2 (its history: epoch 1 and 2, both n1's).
        do {
            var options = StorageOptions()
            options.initialAuthority = Authority(nodeID: NodeID("n1"), role: .primary, epoch: Epoch(2), following: nil, history: [
                EpochHistoryEntry(epoch: Epoch(1), primary: NodeID("n1"), startLSN: LSN(1)),
                EpochHistoryEntry(epoch: Epoch(2), primary: NodeID("n1"), startLSN: LSN(1)),
            ])
            try StorageEngine.open(directory: dir, options: options).close()
        }
        let node = try ServeProcess(dataDir: dir, extraArguments: ["--id", "n1"])
        defer { _ = node.stop() }

        let malformed = try await Self.send(node, "PUT", "/v1/kv/a", epoch: "two", body: "x")
        #expect(malformed.status == 400 && malformed.json?["error"]?["code"] == .string("REQ-BAD-REQUEST"), "\(malformed.text)")

        let lower = try await Self.send(node, "PUT", "/v1/kv/a", epoch: "1", body: "x")
        #expect(lower.status == 409 && lower.json?["error"]?["code"] == .string("REPL-STALE-EPOCH"), "\(lower.text)")
        #expect(try await node.request("GET", "/v1/kv/a").status == 404, "nothing was written")
        // A read at a lower epoch is served (it states its epoch).
        #expect(try await Self.send(node, "GET", "/v1/kv/a", epoch: "1").status == 404)

        let same = try await Self.send(node, "PUT", "/v1/kv/a", epoch: "2", body: "x")
        #expect(same.status == 200, "\(same.text)")
        #expect(try await node.request("PUT", "/v1/kv/b", body: Data("no header".utf8)).status == 200)

        // A client has seen epoch 3: this primary is stale and accepts no more writes, with or
        // without the header; reads still answer.
        let read = try await Self.send(node, "GET", "/v1/kv/a", epoch: "3")
        #expect(read.status == 200 && read.text == "x")
        let after = try await node.request("PUT", "/v1/kv/c", body: Data("y".utf8))
        #expect(after.status == 409 && after.json?["error"]?["code"] == .string("REPL-STALE-EPOCH"), "\(after.text)")
        #expect(after.json?["error"]?["explanation"]?["facts"]?["seen_epoch"]?.integerValue == 3)
        #expect(try await node.request("GET", "/v1/kv/c").status == 404)

        let journal = try String(contentsOfFile: dir + "/events.jsonl", encoding: .utf8)
        #expect(journal.contains("\"event\":\"higher_epoch_seen\""))
        #expect(journal.components(separatedBy: "REPL-STALE-EPOCH").count > 2, "both refusals are journaled")
    }
}
