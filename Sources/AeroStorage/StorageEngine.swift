// StorageEngine.swift — the storage engine: one writer, many readers, group-committed WAL.
//
// Design notes.
//
// The engine is one class whose parts live in files of their own (Swift extensions):
//   Recovery.swift                  opening: files on disk → `RecoveredState` (R1–R6)
//   GroupCommit.swift               the write path as a pure state machine (E1, E2, E6)
//   StorageEngine+Commits.swift     local commits, waiters, listeners, the flusher (S3, E3, E4, E7)
//   StorageEngine+Replica.swift     replicated appends (E4, E6)
//   StorageEngine+Authority.swift   the authority file, fencing, promotion (A1–A4)
//   StorageEngine+Checkpoints.swift checkpoints and the images re-seeding sends (E5)
//   StorageEngine+Reseed.swift      re-seeding a running replica in place (E8)
//   Snapshot.swift                  MVCC read views (E1 visibility, M2)
//   WALReader.swift                 durable records for streaming to a replica
//
// State, all guarded by `condition` (an NSCondition):
//   commits     `GroupCommit`: positions, pending records, waiters, the flush slot
//               (idle | flushing | reseeding) and the sticky failure. Its transitions are the
//               only way any of them changes.
//   lifecycle   open ──close()──▶ closing ──(the flusher drained what was pending)──▶ closed.
//               `close` sets closing; `flusherLoop` sets closed as it exits.
//   fenced      a primary's in-memory fence (`fence` / `unfence`): local commits refused.
//               Independent of the rest (a fenced primary still flushes what it accepted).
//   checkpointRunning  one checkpoint at a time (`checkpointBlocking`); it runs beside
//               flushes, never beside a re-seed in place (each waits for the other), and
//               `close` waits for it.
//   the version store, the authority, snapshot counts by LSN and store generation, counters,
//   the segment list, the checkpoint LSN, the read cursor, durable listeners.
// Outside the lock: the active segment handle and its sizes (`active`, `activeBytes`,
// `activeAllocatedBytes`) belong to whoever holds the flush slot (the flusher thread, a
// committer leading its own flush, or a re-seed in place); the slot is taken and released
// under the lock, so one thread at a time touches them. This is why the class is
// `@unchecked Sendable`.
//
// Positions: lastLSN (assigned) and durableLSN (written and synced, S3) are
// `GroupCommit`'s; appliedLSN is durableLSN (E1: records reach the version store when
// enqueued, snapshots are taken at durableLSN, so nothing not yet durable is visible).

import AeroCore
import Foundation

public final class StorageEngine: @unchecked Sendable {
    public let directory: String
    public let options: StorageOptions
    public let recoveryReport: RecoveryReport
    let io: any StorageIO
    let condition = NSCondition()
    private let directoryLock: any DirectoryLock

    /// A waiter's completion: the LSN it waited for once durable, or why not.
    typealias Completion = @Sendable (Result<LSN, any Error>) -> Void

    enum Lifecycle: Equatable {
        case open
        /// `close` was called: nothing new is accepted; the flusher drains what is pending.
        case closing
        /// The flusher has exited.
        case closed
    }

    // Guarded by `condition`. Internal (not private) only so the engine's parts in the other
    // files reach them; nothing outside the engine touches them.
    var commits: GroupCommit<Completion>
    var lifecycle = Lifecycle.open
    var fenced = false
    var checkpointRunning = false
    var store: VersionStore
    var authorityState: Authority
    var snapshotCounts: [UInt64: Int] = [:]
    /// Bumped by a re-seed in place (E8); snapshots remember the generation they read.
    var generation: UInt64 = 0
    /// Stores replaced by a re-seed in place, kept while snapshots of their generation live.
    var retiredStores: [UInt64: (store: VersionStore, snapshots: Int)] = [:]
    var counters: StorageCounters
    var segments: [(name: String, firstLSN: LSN)]
    var checkpointLSN: LSN
    var walBytesSinceCheckpoint: UInt64
    /// Where recent `readWAL` calls ended, most recent last (at most `readCursorsMax`): one per
    /// replica streaming, so that readers at different positions each resume where they were.
    var readCursors: [(next: LSN, segment: String, offset: UInt64)] = []
    var durableListeners: [UInt64: @Sendable (LSN) -> Void] = [:]
    var nextListenerID: UInt64 = 1

    // Owned by the holder of the flush slot (see the design notes).
    var active: (any StorageFile)?
    var activeBytes: UInt64 = 0
    /// Size of the active segment file (zero-filled beyond `activeBytes`).
    var activeAllocatedBytes: UInt64 = 0

    /// Segments grow by zero-filled chunks of this size, synced with the batch that needs them,
    /// so most appends overwrite allocated blocks and fdatasync need not journal a new size.
    static let preallocationBytes: UInt64 = 1 << 20

    /// `close()` was called (the engine accepts nothing new). Caller holds the lock.
    var closing: Bool { lifecycle != .open }

    // MARK: Opening (recovery)

    /// Opens `directory` (creating it if needed), loads the newest valid checkpoint and replays
    /// the WAL after it. A torn tail is truncated and reported in `recoveryReport`; damage before
    /// the tail throws `StorageError.damaged` naming segment, offset and LSN. Idempotent.
    public static func open(directory: String, options: StorageOptions = StorageOptions()) throws -> StorageEngine {
        try StorageEngine(directory: directory, options: options)
    }

    private init(directory: String, options: StorageOptions) throws {
        let started = DispatchTime.now().uptimeNanoseconds
        self.directory = directory
        self.options = options
        self.io = options.io
        precondition(options.segmentBytesMax >= UInt64(WALFormat.segmentHeaderBytes), "segmentBytesMax too small")
        let recovered: RecoveredState
        do {
            try io.createDirectory(directory)
            directoryLock = try io.lockDirectory(directory)
            recovered = try Recovery.recover(directory: directory, options: options, io: io, startedNs: started)
        } catch let error as StorageIOError {
            throw StorageError.io(error)
        }
        commits = GroupCommit(recoveredThrough: recovered.lastLSN, epoch: recovered.lastEpoch)
        store = recovered.store
        authorityState = recovered.authority
        counters = recovered.counters
        segments = recovered.segments
        checkpointLSN = recovered.checkpointLSN
        walBytesSinceCheckpoint = recovered.walBytesSinceCheckpoint
        if let segment = recovered.active {
            active = segment.file
            activeBytes = segment.validBytes
            activeAllocatedBytes = segment.allocatedBytes
        }
        recoveryReport = recovered.report
        let thread = Thread { [self] in flusherLoop() }
        thread.name = "aerodb-wal-flusher"
        thread.start()
    }

    /// Flushes what is pending, stops the flusher and closes files. Later calls throw `.closed`.
    public func close() {
        condition.lock()
        if lifecycle == .open { lifecycle = .closing }
        condition.broadcast()
        while lifecycle != .closed || checkpointRunning { condition.wait() }
        condition.unlock()
        active?.close()
        active = nil
        directoryLock.release()
    }

    deinit {
        condition.lock()
        let running = lifecycle != .closed
        condition.unlock()
        precondition(!running, "StorageEngine released without close()")
    }

    // MARK: Positions and state

    public var durableLSN: LSN { locked { commits.durableLSN } }
    public var appliedLSN: LSN { locked { commits.durableLSN } }
    /// The last LSN assigned (durable or about to be).
    public var lastLSN: LSN { locked { commits.lastLSN } }
    /// The epoch of the last durable record (zero when the log is empty).
    public var lastEpoch: Epoch { locked { commits.durableEpoch } }
    /// The authority's current epoch.
    public var currentEpoch: Epoch { locked { authorityState.epoch } }
    public var authority: Authority { locked { authorityState } }
    public var isFenced: Bool { locked { fenced } }
    /// Why the WAL failed, if it did (sticky until reopened).
    public var failureReason: String? { locked { commits.failure } }
    public var latestCheckpointLSN: LSN { locked { checkpointLSN } }

    /// The counters (and gauges) at this moment.
    public func countersSnapshot() -> StorageCounters {
        locked {
            var c = counters
            c.keys = UInt64(store.keyCount)
            c.liveSnapshots = UInt64(snapshotCounts.values.reduce(0, +))
            return c
        }
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    // MARK: Helpers

    func wrapIO<T>(_ body: () throws -> T) throws -> T {
        try Self.wrapIO(body)
    }

    static func wrapIO<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StorageIOError { throw StorageError.io(error) }
    }
}

/// Hands one result from the flusher thread to a blocked caller.
final class ResultBox: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private var result: Result<LSN, any Error>?

    func set(_ value: Result<LSN, any Error>) {
        result = value
        semaphore.signal()
    }

    func wait() throws -> LSN {
        semaphore.wait()
        return try result!.get()
    }
}

/// Runs blocking work on its own thread so it does not hold a cooperative-pool thread.
func runOnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

extension StorageEngine {
    /// Reads a data directory's WAL, checkpoints and authority file without changing anything
    /// (for `aerodb wal inspect|verify`). Damage is reported in the result, not thrown.
    public static func inspect(directory: String, io: any StorageIO = PosixIO()) throws -> (report: WALScanReport, authority: Authority?) {
        do {
            let authority = try AuthorityFile.read(directory: directory, io: io)
            return (try WALScanner.scan(directory: directory, io: io, loadCheckpoint: false), authority)
        } catch let error as StorageIOError {
            throw StorageError.io(error)
        }
    }
}
