import AeroCore
@testable import AeroReplication
import AeroStorage
import AeroTestSupport
import Foundation
import Testing

/// The replica's append path (ReplicaAppender): group commit across received batches, one
/// report per flush, in order, and authority changes ordered before later appends. A gate on
/// the WAL's fsync holds a flush open while batches arrive, so what joins which flush is
/// decided by the test, not by timing.
@Suite("Replica append path (group commit per flush)", .serialized)
struct ReplicaAppenderTests {
    /// Bound on waiting for a state the storage threads reach (a bound, not a timing check; the
    /// test fails if it is exceeded).
    static let waitMs = 60_000

    /// PosixIO whose WAL segment syncs wait while the gate is closed; logs renames and WAL writes.
    final class GatedIO: StorageIO, @unchecked Sendable {
        // @unchecked: `closed`, `blocked` and `log` are guarded by `condition`.
        private let posix = PosixIO()
        private let condition = NSCondition()
        private var closed = false
        private var blocked = 0
        private var log: [String] = []

        func closeGate() { condition.withLock { closed = true } }
        func openGate() { condition.withLock { closed = false; condition.broadcast() } }
        /// Syncs waiting at the gate now.
        var syncsBlocked: Int { condition.withLock { blocked } }
        var events: [String] { condition.withLock { log } }
        func note(_ event: String) { condition.withLock { log.append(event) } }

        func gate() {
            condition.lock()
            blocked += 1
            while closed { condition.wait() }
            blocked -= 1
            condition.unlock()
        }

        func open(_ path: String, create: Bool) throws -> any StorageFile {
            let file = try posix.open(path, create: create)
            let name = (path as NSString).lastPathComponent
            return name.hasPrefix("wal-") ? GatedFile(file, io: self) : file
        }
        func exists(_ path: String) -> Bool { posix.exists(path) }
        func list(_ directory: String) throws -> [String] { try posix.list(directory) }
        func createDirectory(_ path: String) throws { try posix.createDirectory(path) }
        func rename(_ from: String, to: String) throws {
            try posix.rename(from, to: to)
            note("rename " + (to as NSString).lastPathComponent)
        }
        func remove(_ path: String) throws { try posix.remove(path) }
        func syncDirectory(_ directory: String) throws { try posix.syncDirectory(directory) }
        func lockDirectory(_ directory: String) throws -> any DirectoryLock { try posix.lockDirectory(directory) }
    }

    /// A WAL segment: a sync after a write of records (not the segment header at offset 0, not
    /// zero-filled preallocation) waits at the gate. Used by the flushing thread only.
    final class GatedFile: StorageFile {
        let file: any StorageFile
        let io: GatedIO
        private var recordsWritten = false
        init(_ file: any StorageFile, io: GatedIO) { self.file = file; self.io = io }
        var path: String { file.path }
        func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int {
            if offset > 0 && bytes.contains(where: { $0 != 0 }) && !recordsWritten {
                recordsWritten = true
                io.note("wal write")
            }
            return try file.write(bytes, at: offset)
        }
        func read(at offset: UInt64, count: Int) throws -> [UInt8] { try file.read(at: offset, count: count) }
        func size() throws -> UInt64 { try file.size() }
        func truncate(to size: UInt64) throws { try file.truncate(to: size) }
        func sync() throws {
            if recordsWritten { io.gate() }
            recordsWritten = false
            try file.sync()
        }
        func close() { file.close() }
    }

    /// What the appender reported, in order.
    final class Reports: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var durable: [LSN] = []
        private var failures: [String] = []
        func add(_ lsn: LSN) { lock.withLock { durable.append(lsn) } }
        func fail(_ message: String) { lock.withLock { failures.append(message) } }
        var lsns: [LSN] { lock.withLock { durable } }
        var failed: [String] { lock.withLock { failures } }
    }

    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        _ = await Deadline.waitUntil(timeoutMs: waitMs, pollMs: 2) { condition() }
        try #require(condition(), "never reached: \(what)")
    }

    /// `count` committed records of a primary at epoch 1, read back from its WAL.
    static func primaryRecords(_ root: String, count: Int) async throws -> [WALRecord] {
        var options = StorageOptions()
        options.initialAuthority = .standalonePrimary("n1")
        let primary = try StorageEngine.open(directory: root + "/n1", options: options)
        defer { primary.close() }
        for i in 0..<count {
            var transaction = Transaction()
            transaction.put("key-\(i)", Array("value-\(i)".utf8))
            _ = try await primary.commit(transaction)
        }
        guard case .records(let records) = try primary.readWAL(from: LSN(1)) else { throw StartFailure() }
        return records
    }

    struct StartFailure: Error {}

    static func openReplica(_ root: String, io: GatedIO, epoch: UInt64 = 1) throws -> StorageEngine {
        var options = StorageOptions()
        options.io = io
        options.initialAuthority = Authority(
            nodeID: "n2", role: .replica, epoch: Epoch(epoch), following: "n1",
            history: [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1))])
        return try StorageEngine.open(directory: root + "/n2", options: options)
    }

    static func temporaryRoot() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-appender-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    @Test("batches arriving during one flush join the next one and are reported together, in order")
    func batchesDuringAFlushShareTheNext() async throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let records = try await Self.primaryRecords(root, count: 6)
        let io = GatedIO()
        let replica = try Self.openReplica(root, io: io)
        defer { replica.close() }
        let reports = Reports()
        let work = DispatchGroup()
        let appender = ReplicaAppender(engine: replica, work: work, onDurable: { reports.add($0) }, onFailure: { reports.fail($0) })

        io.closeGate()
        appender.append(Array(records[0..<2]))
        try await Self.waitUntil("the first flush waits at the gate") { io.syncsBlocked == 1 }
        // Three batches while that flush is open: none waits for a sync to be handed over.
        appender.append(Array(records[2..<3]))
        appender.append(Array(records[3..<5]))
        appender.append(Array(records[5..<6]))
        try await Self.waitUntil("all batches handed to the engine") { replica.lastLSN == LSN(6) }
        #expect(replica.durableLSN == .zero, "nothing is durable while the sync waits")
        #expect(reports.lsns.isEmpty, "nothing reported before a flush ends")
        io.openGate()
        try await Self.waitUntil("everything durable and reported") { reports.lsns.last == LSN(6) }

        #expect(reports.lsns == [LSN(2), LSN(6)], "one report per flush: the first batch's, then the three together")
        #expect(replica.countersSnapshot().fsyncs == 2, "two flushes for four batches")
        #expect(reports.failed.isEmpty)
        #expect(replica.get("key-5") == Array("value-5".utf8))
        #expect(work.wait(timeout: .now()) == .success, "every operation was handed over")
    }

    @Test("an authority change between batches is durable before the later batch is handed over")
    func authorityChangeStaysOrdered() async throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let epochOne = try await Self.primaryRecords(root, count: 2)
        // Two records of epoch 2 continuing at LSN 3 (what a primary of epoch 2 would ship).
        let epochTwo = (0..<2).map { i in
            WALRecord(kind: epochOne[i].kind, epoch: Epoch(2), lsn: LSN(UInt64(3 + i)), payload: epochOne[i].payload)
        }
        let io = GatedIO()
        let replica = try Self.openReplica(root, io: io)
        defer { replica.close() }
        let reports = Reports()
        let lastAtAuthority = NIOLockedLSN()
        let appender = ReplicaAppender(engine: replica, work: DispatchGroup(), onDurable: { reports.add($0) }, onFailure: { reports.fail($0) })

        io.closeGate()
        appender.append(epochOne)
        try await Self.waitUntil("the epoch-1 flush waits at the gate") { io.syncsBlocked == 1 }
        let history = [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1)),
                       EpochHistoryEntry(epoch: Epoch(2), primary: "n1", startLSN: LSN(3))]
        appender.persistAuthority({ current in
            Authority(nodeID: current.nodeID, role: .replica, epoch: Epoch(2), following: "n1", history: history)
        }, describe: "authority change to epoch 2", then: { lastAtAuthority.set(replica.lastLSN) })
        // Handed over at once, without waiting for the change: the appender orders it.
        appender.append(epochTwo)
        try await Self.waitUntil("the epoch-2 batch handed to the engine") { replica.lastLSN == LSN(4) || !reports.failed.isEmpty }
        io.openGate()
        try await Self.waitUntil("everything durable and reported") { reports.lsns.last == LSN(4) || !reports.failed.isEmpty }

        #expect(reports.failed.isEmpty, "the engine accepted epoch 2 (the authority was changed first)")
        #expect(lastAtAuthority.value == LSN(2), "the change ran after the epoch-1 batch and before the epoch-2 batch")
        #expect(reports.lsns == [LSN(2), LSN(4)])
        #expect(replica.authority.epoch == Epoch(2) && replica.authority.history == history)
        // On disk: the authority file was in place before the flush that wrote the epoch-2 records.
        let events = io.events
        let renamed = try #require(events.lastIndex(of: "rename authority.json"))
        let writes = events.indices.filter { events[$0] == "wal write" }
        #expect(writes.count == 2 && renamed > writes[0] && renamed < writes[1], "\(events)")
    }

    @Test("after a refused batch nothing later is handed to the engine, and the failure is reported once")
    func refusalStopsTheAppender() async throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let records = try await Self.primaryRecords(root, count: 4)
        let io = GatedIO()
        let replica = try Self.openReplica(root, io: io)
        defer { replica.close() }
        let reports = Reports()
        let work = DispatchGroup()
        let appender = ReplicaAppender(engine: replica, work: work, onDurable: { reports.add($0) }, onFailure: { reports.fail($0) })
        appender.append(Array(records[0..<2]))
        appender.append(Array(records[3..<4]))  // a gap: LSN 4 after 2
        appender.append(Array(records[2..<3]))  // would fit, but comes after the refusal
        try await Self.waitUntil("the refusal reported") { !reports.failed.isEmpty }
        #expect(work.wait(timeout: .now() + 10) == .success)
        #expect(reports.failed.count == 1 && reports.failed[0].contains("replicated append refused"), "\(reports.failed)")
        #expect(replica.lastLSN == LSN(2), "nothing after the refused batch was appended")
    }
}

/// An LSN set from a storage thread. @unchecked: guarded by `lock`.
final class NIOLockedLSN: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = LSN.zero
    func set(_ lsn: LSN) { lock.withLock { stored = lsn } }
    var value: LSN { lock.withLock { stored } }
}
