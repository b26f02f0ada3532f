import AeroCore
@testable import AeroServer
@testable import AeroStorage
import Foundation
import Logging
import Testing

/// Review of the in-place re-seed (ReseedInPlace.swift): when it must not even start.
/// The primary's HTTP address is 127.0.0.1:1 (nothing listens there): a transfer attempt fails
/// with a connection error after `Reseed.attemptsMax` tries, so the journaled reason tells
/// whether the run refused before transferring.
@Suite struct ReseedInPlaceGuardTests {
    final class Dir {
        let root: String
        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-review-reseed-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    static let primary = MemberConfig(id: "n1", http: HostPort(host: "127.0.0.1", port: 1), peer: HostPort(host: "127.0.0.1", port: 1))

    static func config(_ dir: Dir) -> ServerConfig {
        var config = ServerConfig.standalone(id: "n2", dataDir: dir.root + "/data", http: HostPort(host: "127.0.0.1", port: 0))
        config.members = [primary, MemberConfig(id: "n2", http: HostPort(host: "127.0.0.1", port: 2), peer: HostPort(host: "127.0.0.1", port: 2))]
        return config
    }

    static func replica(_ dir: Dir) throws -> StorageEngine {
        var options = StorageOptions()
        options.initialAuthority = .newReplica("n2", following: "n1")
        return try StorageEngine.open(directory: dir.root + "/data", options: options)
    }

    /// The last journaled event and its `error` field.
    static func lastEvent(_ dir: Dir) throws -> (event: String?, error: String?) {
        let text = try String(contentsOfFile: dir.root + "/data/" + EventJournal.fileName, encoding: .utf8)
        let last = try #require(text.split(separator: "\n").last)
        let json = try JSONParser.parse(String(last))
        return (json["event"]?.stringValue, json["fields"]?["error"]?.stringValue)
    }

    /// E2: a replica whose WAL failed cannot be re-seeded in place (the engine refuses), so the
    /// follow loop's every `mustReseed` round must not transfer the primary's whole checkpoint
    /// again only to be refused: it refuses first, naming the WAL failure.
    @Test func aReplicaWhoseWALFailedRefusesBeforeTransferring() async throws {
        let dir = try Dir()
        let engine = try Self.replica(dir)
        defer { engine.close() }
        // Fail the WAL: an in-place install that cannot read `reseed.ready` (a file, not a dir).
        #expect(FileManager.default.createFile(atPath: dir.root + "/data/" + ReseedInstall.readyName, contents: Data()))
        let history = [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1))]
        let image = CheckpointFormat.encode(lsn: LSN(10), epoch: Epoch(1), entries: [("k", [1])])
        await #expect(throws: (any Error).self) {
            try await engine.reseedInPlace(image, authority: Authority(nodeID: "n2", role: .replica, epoch: Epoch(1), following: "n1", history: history))
        }
        let failure = try #require(engine.failureReason)

        let journal = try EventJournal(directory: dir.root + "/data", node: "n2")
        defer { try? journal.close() }
        let reseeded = await ReseedInPlace.run(engine: engine, config: Self.config(dir), primary: Self.primary, reason: "review",
                                               journal: journal, logger: Logger(label: "review"))
        #expect(!reseeded)
        let last = try Self.lastEvent(dir)
        #expect(last.event == "reseed_failed")
        #expect(last.error?.contains(failure) == true, "refused for the failed WAL, not after a transfer: \(last.error ?? "none")")
    }

    /// A follow loop stopped (its task cancelled by `stopFollowing`) starts no re-seed: it would
    /// adopt the old primary's checkpoint and authority after the node was told to stop following
    /// it (a promotion or a re-pointing checked the position before).
    @Test func aCancelledFollowLoopStartsNoReseed() async throws {
        let dir = try Dir()
        let engine = try Self.replica(dir)
        defer { engine.close() }
        let journal = try EventJournal(directory: dir.root + "/data", node: "n2")
        defer { try? journal.close() }
        let config = Self.config(dir)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await ReseedInPlace.run(engine: engine, config: config, primary: Self.primary, reason: "review",
                                           journal: journal, logger: Logger(label: "review"))
        }
        #expect(await task.value == false)
        let last = try Self.lastEvent(dir)
        #expect(last.event == "reseed_failed")
        #expect(last.error?.contains("CancellationError") == true, "refused for the stop, not after a transfer: \(last.error ?? "none")")
    }
}
