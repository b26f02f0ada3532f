import AeroCore
@testable import AeroStorage
import Foundation
import Testing

/// Re-seeding a running replica's engine from a checkpoint image (storage E8), on the real file
/// system (the install renames directories).
@Suite struct ReseedInPlaceTests {
    final class Dirs {
        let root: String
        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-reseed-in-place-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    /// A primary with `count` commits over keys k0..k9, and a replica that adopted its
    /// authority and appended its first `replicated` records.
    static func pair(_ dirs: Dirs, count: Int, replicated: Int, replicaIO: any StorageIO = PosixIO()) async throws -> (primary: StorageEngine, replica: StorageEngine) {
        var po = StorageOptions()
        po.initialAuthority = .standalonePrimary("n1")
        let primary = try StorageEngine.open(directory: dirs.root + "/p", options: po)
        for i in 0..<count { _ = try await primary.commit(put(("k\(i % 10)", "v\(i)"))) }
        var ro = StorageOptions()
        ro.initialAuthority = .newReplica("n2", following: "n1")
        ro.io = replicaIO
        let replica = try StorageEngine.open(directory: dirs.root + "/r", options: ro)
        try adopt(replica, primary.authority)
        if replicated > 0 {
            let all = records(try primary.readWAL(from: LSN(1)))
            _ = try await replica.appendReplicated(Array(all.prefix(replicated)))
        }
        return (primary, replica)
    }

    static func adopted(_ primary: StorageEngine) -> Authority {
        Authority(nodeID: "n2", role: .replica, epoch: primary.authority.epoch, following: "n1", history: primary.authority.history)
    }

    @Test func aRunningReplicaMovesToTheImageAndOldSnapshotsKeepTheirView() async throws {
        let dirs = try Dirs()
        let (primary, replica) = try await Self.pair(dirs, count: 30, replicated: 5)
        defer { primary.close() }
        let old = replica.snapshot()
        #expect(old.lsn == LSN(5) && text(old.get("k4")) == "v4")
        let image = try primary.checkpointImage()
        #expect(image.lsn == LSN(30))

        let facts = try await replica.reseedInPlace(image.bytes, authority: Self.adopted(primary))
        #expect(facts.lsn == LSN(30) && facts.entries == 10)
        #expect(replica.durableLSN == LSN(30) && replica.lastLSN == LSN(30) && replica.appliedLSN == LSN(30))
        #expect(replica.lastEpoch == primary.lastEpoch && replica.latestCheckpointLSN == LSN(30))
        for i in 0..<10 { #expect(replica.get("k\(i)") == primary.get("k\(i)")) }
        // A snapshot from before reads the state it was taken at, not a mix.
        #expect(text(old.get("k4")) == "v4" && old.get("k7") == nil)
        #expect(old.scan(prefix: "k").map(\.key) == ["k0", "k1", "k2", "k3", "k4"])
        let fresh = replica.snapshot()
        #expect(fresh.lsn == LSN(30) && text(fresh.get("k7")) == "v27")
        // Streaming continues after the checkpoint; the result survives a restart.
        _ = try await primary.commit(put(("k0", "after")))
        #expect(try await replica.appendReplicated(records(try primary.readWAL(from: LSN(31)))) == LSN(31))
        #expect(text(replica.get("k0")) == "after")
        replica.close()
        var ro = StorageOptions()
        ro.initialAuthority = .newReplica("n2", following: "n1")
        let reopened = try StorageEngine.open(directory: dirs.root + "/r", options: ro)
        defer { reopened.close() }
        #expect(reopened.durableLSN == LSN(31) && text(reopened.get("k0")) == "after" && text(reopened.get("k9")) == "v29")
        #expect(reopened.authority == Self.adopted(primary))
    }

    @Test func refusalsChangeNothing() async throws {
        let dirs = try Dirs()
        let (primary, replica) = try await Self.pair(dirs, count: 20, replicated: 20)
        defer { primary.close(); replica.close() }
        let image = try primary.checkpointImage()
        // Not strictly ahead: would not move the replica forward (it never cuts a WAL back).
        await #expect(throws: StorageError.self) { _ = try await replica.reseedInPlace(image.bytes, authority: Self.adopted(primary)) }
        // An authority whose history does not extend the local one.
        _ = try await primary.commit(put(("k0", "more")))
        let ahead = try primary.checkpointImage()
        var foreign = Self.adopted(primary)
        foreign.history = [EpochHistoryEntry(epoch: primary.authority.epoch, primary: "n3", startLSN: LSN(1))]
        await #expect(throws: StorageError.self) { _ = try await replica.reseedInPlace(ahead.bytes, authority: foreign) }
        // A damaged image.
        var damaged = ahead.bytes
        damaged[damaged.count / 2] ^= 0xFF
        await #expect(throws: StorageError.self) { _ = try await replica.reseedInPlace(damaged, authority: Self.adopted(primary)) }
        // A primary is not re-seeded.
        await #expect(throws: StorageError.self) { _ = try await primary.reseedInPlace(ahead.bytes, authority: Self.adopted(primary)) }
        #expect(replica.durableLSN == LSN(20) && replica.failureReason == nil)
        #expect(replica.authority.history == primary.authority.history)
        #expect(try await replica.appendReplicated(records(try primary.readWAL(from: LSN(21)))) == LSN(21), "it still streams")
    }

    /// PosixIO whose rename of the staged re-seed into place (the install's commit point) fails.
    struct FailingCommitIO: StorageIO {
        let posix = PosixIO()
        func open(_ path: String, create: Bool) throws -> any StorageFile { try posix.open(path, create: create) }
        func exists(_ path: String) -> Bool { posix.exists(path) }
        func list(_ directory: String) throws -> [String] { try posix.list(directory) }
        func createDirectory(_ path: String) throws { try posix.createDirectory(path) }
        func rename(_ from: String, to: String) throws {
            if to.hasSuffix("/reseed.ready") { throw StorageIOError(operation: "rename", path: to, errno: EIO) }
            try posix.rename(from, to: to)
        }
        func remove(_ path: String) throws { try posix.remove(path) }
        func syncDirectory(_ directory: String) throws { try posix.syncDirectory(directory) }
        func lockDirectory(_ directory: String) throws -> any DirectoryLock { try posix.lockDirectory(directory) }
    }

    @Test func aFailedInstallFailsTheWALAndTheOldStateSurvivesForTheNextStart() async throws {
        let dirs = try Dirs()
        let (primary, replica) = try await Self.pair(dirs, count: 30, replicated: 5, replicaIO: FailingCommitIO())
        defer { primary.close() }
        let image = try primary.checkpointImage()
        await #expect(throws: StorageError.self) { _ = try await replica.reseedInPlace(image.bytes, authority: Self.adopted(primary)) }
        #expect(replica.failureReason?.contains("re-seed in place failed") == true, "E2: the WAL failed")
        let next = records(try primary.readWAL(from: LSN(6)))
        await #expect(throws: StorageError.self, "nothing more is appended") { _ = try await replica.appendReplicated(next) }
        #expect(replica.durableLSN == LSN(5) && text(replica.get("k4")) == "v4", "the in-memory state was not replaced")
        replica.close()
        // The next start (ServerNode: finishPending, then open) discards the uncommitted install.
        try ReseedInstall.finishPending(directory: dirs.root + "/r")
        var ro = StorageOptions()
        ro.initialAuthority = .newReplica("n2", following: "n1")
        let reopened = try StorageEngine.open(directory: dirs.root + "/r", options: ro)
        defer { reopened.close() }
        #expect(reopened.durableLSN == LSN(5) && text(reopened.get("k4")) == "v4" && reopened.get("k7") == nil)
    }
}
