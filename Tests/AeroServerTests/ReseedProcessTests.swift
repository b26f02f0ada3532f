import AeroCore
import AeroStorage
import Foundation
import Testing
import AeroTestSupport

/// Re-seeding with real processes: a replica whose WAL is gone from its primary re-seeds itself
/// at start, or in place while it runs; an operator re-seeds a node of another history with
/// `aerodb reseed`.
@Suite("Re-seeding from the primary's checkpoint, real processes", .serialized)
struct ReseedProcessTests {
    static func durableLSN(_ node: ServeProcess) async throws -> Int64 {
        try await node.request("GET", "/v1/status").json?["node"]?["durable_lsn"]?.integerValue ?? -1
    }

    /// Waits (bounded polls of 10 ms) until `replica` is durable through `primary`'s durable LSN.
    /// Opens the stopped primary's engine with small segments, writes on (overwrites and deletes
    /// too), checkpoints, and checks the WAL after `after` is gone. False (an issue recorded)
    /// when it is not, so the test would not exercise re-seeding.
    static func writeOnAndDropWAL(primaryDir: String, after before: Int64) throws -> Bool {
        var options = StorageOptions()
        options.segmentBytesMax = 4096
        let engine = try StorageEngine.open(directory: primaryDir, options: options)
        defer { engine.close() }
        for i in 0..<300 {
            var txn = Transaction()
            if i % 7 == 0 { txn.delete("a\(i % 50)") } else { txn.put("c\(i % 120)", Array("third \(i) ".utf8) + [0, 255, UInt8(i % 256)]) }
            _ = try engine.commitBlocking(txn)
        }
        let checkpoint = try engine.checkpointBlocking()
        guard case .walGone = try engine.readWAL(from: LSN(UInt64(before) + 1), bytesMax: 1) else {
            Issue.record("the primary still holds LSN \(before + 1); the test would not exercise re-seeding")
            return false
        }
        #expect(checkpoint > LSN(UInt64(before)))
        return true
    }

    static func catchUp(_ replica: ServeProcess, to primary: ServeProcess) async throws -> Int64 {
        let target = try await durableLSN(primary)
        _ = try await Deadline.waitUntil(timeoutMs: ClusterProcessTests.catchUpWaitMs, pollMs: 10) { try await durableLSN(replica) >= target }
        return target
    }

    static func entries(_ node: ServeProcess, minLSN: Int64) async throws -> JSONValue? {
        try await node.request("GET", "/v1/kv?prefix=&min_lsn=\(minLSN)").json?["entries"]
    }

    static func journalEvents(_ dataDir: String) throws -> [JSONValue] {
        let text = try String(contentsOfFile: dataDir + "/events.jsonl", encoding: .utf8)
        return text.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
    }

    /// Runs `aerodb` with `arguments`; returns exit status and combined output.
    static func aerodb(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = builtExecutable("aerodb")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        return (ChildProcess.waitOrKill(process).status, String(decoding: data, as: UTF8.self))
    }

    @Test("a replica down while its primary checkpoints and drops the WAL it needs re-seeds at restart and ends byte for byte equal")
    func reseedAtRestart() async throws {
        let cluster = try TwoNodeCluster(commitMode: "async", syncTimeoutMs: 1000)
        defer { cluster.stopAll() }
        var n1 = try cluster.start(0)
        var n2 = try cluster.start(1)
        for i in 0..<50 {
            #expect(try await n1.request("PUT", "/v1/kv/a\(i)", body: Data("first \(i)".utf8)).status == 200)
        }
        let before = try await Self.catchUp(n2, to: n1)
        #expect(try await Self.durableLSN(n2) == before)
        #expect(n2.stop() == 0)

        for i in 0..<100 {
            #expect(try await n1.request("PUT", "/v1/kv/b\(i)", body: Data("second \(i)".utf8)).status == 200)
        }
        #expect(n1.stop() == 0)
        // The primary's engine, with small segments, writes on (overwrites and deletes too),
        // checkpoints, and removes the segments the checkpoint covers: the WAL n2 needs is gone.
        guard try Self.writeOnAndDropWAL(primaryDir: cluster.root + "/n1", after: before) else { return }
        n1 = try cluster.start(0)
        n2 = try cluster.start(1)
        #expect(try await n1.request("PUT", "/v1/kv/after", body: Data("streamed after the checkpoint".utf8)).status == 200)
        let target = try await Self.catchUp(n2, to: n1)
        #expect(try await Self.durableLSN(n2) == target)
        let onPrimary = try await Self.entries(n1, minLSN: 0)
        let onReplica = try await Self.entries(n2, minLSN: target)
        #expect(onPrimary != nil && onPrimary == onReplica, "the replica's data equals the primary's")
        #expect((onPrimary?.arrayValue?.count ?? 0) > 100)

        let events = try Self.journalEvents(cluster.root + "/n2")
        let reseed = events.first { $0["event"] == .string("reseed") }
        #expect(reseed?["fields"]?["discarded_durable_lsn"]?.integerValue == before)
        #expect(reseed?["fields"]?["primary"] == .string("n1"))
        #expect(events.contains { $0["event"] == .string("reseed_installed") })
        // The replica's state now starts at the checkpoint: no segment of its old WAL is left.
        let scan = try StorageEngine.inspect(directory: cluster.root + "/n2")
        #expect((scan.report.checkpoint?.lsn ?? 0) > UInt64(before))
        #expect(scan.authority?.role == .replica && scan.authority?.following == NodeID("n1"))
    }

    @Test("a running replica whose primary dropped the WAL it needs re-seeds in place, without a restart, and ends equal to it")
    func reseedInPlaceWhileRunning() async throws {
        let cluster = try TwoNodeCluster(commitMode: "async", syncTimeoutMs: 1000)
        defer { cluster.stopAll() }
        var n1 = try cluster.start(0)
        let n2 = try cluster.start(1)
        let pid = n2.process.processIdentifier
        for i in 0..<50 {
            #expect(try await n1.request("PUT", "/v1/kv/a\(i)", body: Data("first \(i)".utf8)).status == 200)
        }
        let before = try await Self.catchUp(n2, to: n1)
        #expect(try await Self.durableLSN(n2) == before)
        #expect(n1.stop() == 0)
        // n2 keeps running (and reconnecting) while the primary's engine writes on with small
        // segments, checkpoints and removes the segments the checkpoint covers.
        guard try Self.writeOnAndDropWAL(primaryDir: cluster.root + "/n1", after: before) else { return }
        n1 = try cluster.start(0)
        #expect(try await n1.request("PUT", "/v1/kv/after", body: Data("streamed after the checkpoint".utf8)).status == 200)
        let target = try await Self.catchUp(n2, to: n1)
        #expect(try await Self.durableLSN(n2) == target)
        #expect(n2.process.isRunning && n2.process.processIdentifier == pid, "the same replica process, never restarted")
        let onPrimary = try await Self.entries(n1, minLSN: 0)
        let onReplica = try await Self.entries(n2, minLSN: target)
        #expect(onPrimary != nil && onPrimary == onReplica, "the replica's data equals the primary's")
        #expect((onPrimary?.arrayValue?.count ?? 0) > 100)

        let events = try Self.journalEvents(cluster.root + "/n2")
        #expect(events.contains { $0["event"] == .string("reseed_required") })
        let reseed = events.first { $0["event"] == .string("reseed") }
        #expect(reseed?["fields"]?["in_place"] == .bool(true))
        #expect(reseed?["fields"]?["discarded_durable_lsn"]?.integerValue == before)
        #expect(reseed?["fields"]?["primary"] == .string("n1"))
        #expect(events.contains { $0["event"] == .string("reseed_installed") && $0["fields"]?["in_place"] == .bool(true) })
        // A transfer that fails (the primary just restarted; a loaded host) is journaled and
        // asked again after the follow loop's delay, by design; after the install, none.
        let installedAt = events.firstIndex { $0["event"] == .string("reseed_installed") } ?? events.count
        let failures = events.enumerated().filter { $0.element["event"] == .string("reseed_failed") }
        #expect(failures.allSatisfy { $0.offset < installedAt }, "\(failures.map { $0.element["fields"]?["error"] ?? .null })")
        #expect(events.filter { $0["event"] == .string("reseed_installed") }.count == 1)
        // No segment of the old WAL is left; a restart opens the re-seeded state.
        #expect(n2.stop() == 0)
        let scan = try StorageEngine.inspect(directory: cluster.root + "/n2")
        #expect((scan.report.checkpoint?.lsn ?? 0) > UInt64(before))
        #expect(scan.report.lastLSN == UInt64(target))
        #expect(scan.authority?.role == .replica && scan.authority?.following == NodeID("n1"))
    }

    @Test("aerodb reseed: refuses to discard a node's state without --discard-local-state; with it, a node of another history rejoins as a replica")
    func operatorReseed() async throws {
        let cluster = try TwoNodeCluster(commitMode: "async", syncTimeoutMs: 1000)
        defer { cluster.stopAll() }
        let n1 = try cluster.start(0)
        for i in 0..<40 {
            #expect(try await n1.request("PUT", "/v1/kv/k\(i)", body: Data("v\(i)".utf8)).status == 200)
        }
        // n2's data dir has a history of its own: it was a standalone primary.
        let rogue = try ServeProcess(arguments: ["serve", "--data-dir", cluster.root + "/n2", "--id", "n2", "--http", "127.0.0.1:0"],
                                     dataDir: cluster.root + "/n2")
        #expect(try await rogue.request("PUT", "/v1/kv/only-on-n2", body: Data("diverged".utf8)).status == 200)
        #expect(rogue.stop() == 0)

        // Without confirmation nothing is discarded.
        let refused = try Self.aerodb(["reseed", "--config", cluster.root + "/n2.json"])
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("--discard-local-state"), "\(refused.output)")
        #expect(try StorageEngine.inspect(directory: cluster.root + "/n2").authority?.role == .primary)

        // From a node that is not a primary: refused.
        let wrongSource = try Self.aerodb(["reseed", "--config", cluster.root + "/n2.json", "--discard-local-state",
                                           "--from", "127.0.0.1:\(try freeLoopbackPort())"])
        #expect(wrongSource.status == 1, "\(wrongSource.output)")

        let done = try Self.aerodb(["reseed", "--config", cluster.root + "/n2.json", "--discard-local-state"])
        #expect(done.status == 0, "\(done.output)")
        let events = try Self.journalEvents(cluster.root + "/n2")
        #expect(events.contains { $0["event"] == .string("reseed") && $0["fields"]?["reason"] == .string("operator: aerodb reseed") })

        let n2 = try cluster.start(1)
        #expect(try await n1.request("PUT", "/v1/kv/later", body: Data("after the reseed".utf8)).status == 200)
        let target = try await Self.catchUp(n2, to: n1)
        #expect(try await Self.entries(n2, minLSN: target) == Self.entries(n1, minLSN: 0))
        #expect(try await n2.request("GET", "/v1/kv/only-on-n2?min_lsn=\(target)").status == 404)
        let write = try await n2.request("PUT", "/v1/kv/x", body: Data("y".utf8))
        #expect(write.json?["error"]?["code"] == .string("REPL-WRITE-ON-REPLICA"))
    }
}
