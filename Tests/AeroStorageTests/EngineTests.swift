import AeroCore
@testable import AeroStorage
import Foundation
import Testing
import AeroTestSupport

@Suite struct EngineTests {
    @Test func commitGetScanDeleteAndPreconditions() async throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        let first = try await engine.commit(put(("a/1", "x"), ("a/2", "y"), ("b", "z")))
        #expect(first == LSN(1) && engine.durableLSN == LSN(1) && engine.appliedLSN == LSN(1))
        #expect(text(engine.get("a/1")) == "x")
        #expect(engine.snapshot().scan(prefix: "a/").map(\.key) == ["a/1", "a/2"])
        var del = Transaction()
        del.delete("a/1")
        del.expect("b", equals: Array("z".utf8))
        #expect(try await engine.commit(del) == LSN(2))
        #expect(engine.get("a/1") == nil)
        var failing = put(("c", "1"))
        failing.expect("b", equals: nil)
        await #expect(throws: StorageError.preconditionFailed(key: "b")) { try await engine.commit(failing) }
        #expect(engine.lastLSN == LSN(2) && engine.get("c") == nil)
        await #expect(throws: StorageError.emptyTransaction) { try await engine.commit(Transaction()) }
        let longKey = String(repeating: "k", count: WALFormat.keyBytesMax + 1)
        await #expect(throws: StorageError.self) { try await engine.commit(put((longKey, "v"))) }
        engine.close()
        let reopened = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        defer { reopened.close() }
        #expect(reopened.durableLSN == LSN(2) && text(reopened.get("a/2")) == "y" && reopened.get("a/1") == nil)
        #expect(reopened.recoveryReport.recordsReplayed == 2)
    }

    @Test func concurrentCommittersShareSyncs() async throws {
        let dir = temporaryDirectory("group")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try StorageEngine.open(directory: dir)
        defer { engine.close() }
        let writers = 32
        let perWriter = 20
        let lsns = try await withThrowingTaskGroup(of: [LSN].self) { group in
            for w in 0..<writers {
                group.addTask {
                    var mine: [LSN] = []
                    for i in 0..<perWriter { mine.append(try await engine.commit(put(("w\(w)/\(i)", "v")))) }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(Set(lsns).count == writers * perWriter)
        #expect(lsns.max() == LSN(UInt64(writers * perWriter)))
        let c = engine.countersSnapshot()
        #expect(c.commits == UInt64(writers * perWriter))
        #expect(c.groupCommitRecords == UInt64(writers * perWriter))
        // Every batch is one write and one sync; with 32 concurrent writers batches must merge.
        #expect(c.fsyncs == c.groupCommitBatches && c.fsyncs < UInt64(writers * perWriter))
        #expect(c.groupCommitBatchRecordsMax > 1)
    }

    @Test func aDataDirectoryIsOpenedByOneEngineAtATime() throws {
        let dir = temporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try StorageEngine.open(directory: dir)
        do {
            let second = try StorageEngine.open(directory: dir)
            second.close()
            Issue.record("a second engine opened a locked directory")
        } catch let e as StorageError {
            #expect(e.ruleID == "storage.io" && e.description.contains("another process"))
        }
        first.close()
        try StorageEngine.open(directory: dir).close()
    }

    @Test func failedSyncIsStickyAndNothingIsAcknowledged() async throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        _ = try await engine.commit(put(("a", "1")))
        fs.fault = .failSync(fs.syncs + 1)
        await #expect(throws: StorageError.self) { try await engine.commit(put(("b", "2"))) }
        #expect(engine.failureReason != nil)
        // Sticky: later commits are refused though the file system works again.
        fs.fault = .none
        do {
            _ = try await engine.commit(put(("c", "3")))
            Issue.record("commit after a failed sync was accepted")
        } catch let error as StorageError {
            #expect(error.ruleID == "storage.wal.failed")
        }
        #expect(engine.durableLSN == LSN(1) && engine.get("b") == nil)
        engine.close()
        let reopened = try StorageEngine.open(directory: "/d", options: simOptions(fs.crashImage()))
        defer { reopened.close() }
        #expect(text(reopened.get("a")) == "1")
        #expect(reopened.get("c") == nil)
    }

    @Test func segmentsRotateAndCheckpointsRemoveCoveredSegments() async throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs, segmentBytes: 400))
        for i in 0..<40 { _ = try await engine.commit(put(("k\(i % 7)", "value-\(i)"))) }
        let before = try fs.list("/d").filter { $0.hasPrefix("wal-") }.count
        #expect(before > 3)
        let ckpt = try await engine.checkpoint()
        #expect(ckpt == LSN(40))
        let after = try fs.list("/d").filter { $0.hasPrefix("wal-") }
        #expect(after.count == 1)
        for i in 40..<45 { _ = try await engine.commit(put(("k\(i % 7)", "value-\(i)"))) }
        // WAL before the checkpoint is gone: a reader must be re-seeded.
        #expect(try engine.readWAL(from: LSN(1)) == .walGone(oldestAvailable: WALFormat.segmentFirstLSN(after[0]), checkpointLSN: LSN(40)))
        engine.close()
        let reopened = try StorageEngine.open(directory: "/d", options: simOptions(fs.crashImage(), segmentBytes: 400))
        defer { reopened.close() }
        #expect(reopened.recoveryReport.checkpointLSN == 40)
        #expect(reopened.recoveryReport.recordsReplayed == 5)
        for i in 38..<45 { #expect(text(reopened.get("k\(i % 7)")) == "value-\(i)") }
        #expect(reopened.countersSnapshot().keys == 7)
    }

    @Test func checkpointTriggeredByWALSize() async throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs, segmentBytes: 1000, checkpointBytes: 2000))
        for i in 0..<100 { _ = try await engine.commit(put(("k\(i)", String(repeating: "v", count: 50)))) }
        engine.close()
        #expect(engine.countersSnapshot().checkpoints >= 1)
        #expect(try fs.list("/d").contains { $0.hasPrefix("checkpoint-") })
        let reopened = try StorageEngine.open(directory: "/d", options: simOptions(fs.crashImage()))
        defer { reopened.close() }
        #expect(reopened.countersSnapshot().keys == 100)
    }
}
