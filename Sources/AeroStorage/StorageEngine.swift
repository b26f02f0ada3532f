// StorageEngine.swift — the storage engine: one writer, many readers, group-committed WAL.
//
// Design notes.
//
// Positions (all LSNs; 0 means none):
//   lastLSN     the last LSN assigned to a record (appended to the pending buffer)
//   durableLSN  the last LSN whose bytes were written and synced (S3)
//   appliedLSN  the last LSN readers may see; equals durableLSN (records are applied to the
//               version store when appended, but snapshots are taken at durableLSN, so nothing
//               not yet durable is ever visible: uncommitted changes are invisible)
//   invariant E1: appliedLSN == durableLSN ≤ lastLSN
//
// The write path (group commit):
//   commit → under the lock: check state, preconditions; assign lastLSN+1; encode the record
//   into the pending buffer; apply to the version store; register a waiter → whoever flushes
//   next (`flushLocked`: the flusher thread for async commits and replicated appends, or a
//   blocking committer leading its own flush) takes the whole pending buffer, writes it to the
//   active segment, syncs once, advances durableLSN and resumes every waiter up to it.
//   Committers that arrive while a sync runs share the next one. At most one flush runs at a
//   time (`flushInProgress`).
//
// States of the WAL:
//
//     open ──(write/sync throws)──▶ failed ──(close)──▶ closed
//       └──────────────(close)──────────────────────────▶ closed
//
//   E2 failed is sticky: no acknowledgement follows a failed write or sync; every waiter and
//      every later commit gets `.walFailed`; only reopening (recovery) leaves it. (`fail`)
//   E3 Segment creation and removal sync the directory before a record in the new segment is
//      acknowledged / after the removal. (`rotate`, `removeCoveredFiles`)
//   E4 Local commits require role primary and no fence; replicated appends require role
//      replica, the next LSN, and an epoch the authority accepted. (`enqueueLocked`,
//      `appendReplicatedLocked`)
//   E5 A checkpoint at LSN c is durable (file synced, renamed, directory synced) before any
//      WAL segment wholly at or below c is removed. (`checkpointBlocking`)
//   E6 Replicated appends are group-committed like local commits: `appendReplicated` only
//      places the records (with their own LSNs) in the pending buffer and registers a
//      completion, so batches handed over while a flush runs share the next write and sync.
//      Completions run after the flush that made their records durable, in LSN order (waiters
//      are kept in LSN order). The caller alone orders its batches: the engine never reorders,
//      it refuses a record that is not the next LSN (E4). (`enqueueReplicated`, `flushLocked`)
//   E8 A re-seed in place (`reseedInPlace`) replaces a running replica's state by a checkpoint
//      image strictly ahead of its durable LSN, never behind it (no WAL is cut back here). It
//      holds the flush slot (`flushInProgress`) with nothing pending, so no record is written
//      meanwhile and it alone touches the active segment; checkpoints wait for it. On disk it is
//      `ReseedInstall.install` (RS1–RS4: all or nothing, rolled forward at the next open if
//      interrupted); a failure there fails the WAL (E2). In memory the version store, positions,
//      segment list and read cursor are replaced in one step under the lock. Snapshots taken
//      before keep reading the store they were taken from (retired with its generation until
//      the last of them is released), so a reader never sees a mix of old and new state.
//   E7 Durable listeners hear the new durable LSN after every successful flush, once per
//      flush, before its waiters resume, on the flushing thread with the lock released; they
//      must not block. Only durable LSNs are announced; two flushes led by different threads
//      may announce out of order, so a listener keeps the maximum. (`flushLocked`)
//
// Concurrency: every mutable field is guarded by `condition` (an NSCondition), except the
// flusher-owned active segment handle, which only the flusher thread touches after `open`.
// This is why the class is `@unchecked Sendable`.

import AeroCore
import Foundation

public final class StorageEngine: @unchecked Sendable {
    public let directory: String
    public let options: StorageOptions
    public let recoveryReport: RecoveryReport
    private let io: any StorageIO
    private let condition = NSCondition()
    private let directoryLock: any DirectoryLock

    // Guarded by `condition`.
    private var store = VersionStore()
    private var authorityState: Authority
    private var lastAssigned = LSN.zero
    private var lastAssignedEpoch = Epoch.zero
    private var durable = LSN.zero
    private var durableEpoch = Epoch.zero
    private var pending: [UInt8] = []
    private var pendingFirst = LSN.zero
    private var pendingRecords: UInt64 = 0
    private var waiters: [(lsn: LSN, done: @Sendable (Result<LSN, any Error>) -> Void)] = []
    private var failure: String?
    private var closing = false
    private var flusherExited = false
    private var fenced = false
    /// A batch is being written and synced (by the flusher thread or a leading committer).
    private var flushInProgress = false
    private var snapshotCounts: [UInt64: Int] = [:]
    /// Bumped by a re-seed in place (E8); snapshots remember the generation they read.
    private var generation: UInt64 = 0
    /// Stores replaced by a re-seed in place, kept while snapshots of their generation live.
    private var retiredStores: [UInt64: (store: VersionStore, snapshots: Int)] = [:]
    /// A re-seed in place is running (E8).
    private var reseeding = false
    private var counters = StorageCounters()
    private var segments: [(name: String, firstLSN: LSN)] = []
    private var checkpointLSN = LSN.zero
    private var checkpointRunning = false
    private var walBytesSinceCheckpoint: UInt64 = 0
    private var readCursor: (next: LSN, segment: String, offset: UInt64)?
    private var durableListeners: [UInt64: @Sendable (LSN) -> Void] = [:]
    private var nextListenerID: UInt64 = 1

    // Owned by the flusher thread.
    private var active: (any StorageFile)?
    private var activeBytes: UInt64 = 0
    /// Size of the active segment file (zero-filled beyond `activeBytes`).
    private var activeAllocatedBytes: UInt64 = 0

    /// Segments grow by zero-filled chunks of this size, synced with the batch that needs them,
    /// so most appends overwrite allocated blocks and fdatasync need not journal a new size.
    static let preallocationBytes: UInt64 = 1 << 20

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
        do {
            try io.createDirectory(directory)
            directoryLock = try io.lockDirectory(directory)
            // E8/RS1: an interrupted re-seed is finished (or discarded) before anything is read,
            // by every opener; else the old state (or, in a fresh directory, a default authority)
            // would open beside the committed new one.
            try ReseedInstall.finishPending(directory: directory, io: io)
            let names = try io.list(directory)
            let temporary = names.filter { $0.hasSuffix(".tmp") }.sorted()
            for name in temporary { try io.remove(directory + "/" + name) }
            if !temporary.isEmpty { try io.syncDirectory(directory) }

            if let existing = try AuthorityFile.read(directory: directory, io: io) {
                authorityState = existing
            } else {
                let hasData = names.contains { WALFormat.segmentFirstLSN($0) != nil || CheckpointFormat.lsn(ofFileName: $0) != nil }
                if hasData {
                    throw StorageError.authority("\(directory)/\(AuthorityFile.name) is missing but the directory holds WAL or checkpoint files")
                }
                if let problem = options.initialAuthority.wellFormedProblem() { throw StorageError.authority(problem) }
                try AuthorityFile.write(options.initialAuthority, directory: directory, io: io)
                authorityState = options.initialAuthority
            }

            var store = VersionStore()
            var report = try WALScanner.scan(
                directory: directory, io: io, loadCheckpoint: true,
                checkpointImage: { image in
                    for (key, value) in image.entries { store.load(key, value: value, lsn: image.lsn) }
                },
                visit: { record, segment, offset in
                    guard record.kind == .transaction else { return nil }
                    let wellFormed = TransactionCodec.forEach(record.payload) { key, value in
                        store.apply(key, value: value.map { [UInt8]($0) }, lsn: record.lsn, oldestNeeded: record.lsn)
                    }
                    guard wellFormed else {
                        return WALDamage(kind: .corruptRecord, segment: segment, offset: offset, lsn: record.lsn,
                                         detail: "transaction payload is malformed although its checksum matches")
                    }
                    return nil
                })
            if let damage = report.damage { throw StorageError.damaged(damage) }
            if report.lastEpoch > authorityState.epoch.rawValue {
                throw StorageError.damaged(WALDamage(
                    kind: .authorityBehindWAL, segment: report.segments.last?.name ?? AuthorityFile.name, offset: 0,
                    lsn: LSN(report.lastLSN),
                    detail: "the WAL holds epoch \(report.lastEpoch) but \(AuthorityFile.name) is at epoch \(authorityState.epoch)"))
            }
            _ = store.sweep(oldestNeeded: LSN(report.lastLSN))
            if let torn = report.tornTail {
                let path = directory + "/" + torn.segment
                if torn.removeSegment {
                    try io.remove(path)
                    try io.syncDirectory(directory)
                    report.segments.removeAll { $0.name == torn.segment }
                } else {
                    let file = try io.open(path, create: false)
                    defer { file.close() }
                    try file.truncate(to: torn.offset)
                    try file.sync()
                }
                counters.tornTailsTruncated = 1
            }

            self.store = store
            lastAssigned = LSN(report.lastLSN)
            lastAssignedEpoch = Epoch(report.lastEpoch)
            durable = lastAssigned
            durableEpoch = lastAssignedEpoch
            checkpointLSN = LSN(report.checkpoint?.lsn ?? 0)
            segments = report.segments.map { ($0.name, LSN($0.firstLSN)) }
            walBytesSinceCheckpoint = report.bytesAfterCheckpoint

            // Continue appending to the last segment only if it ends exactly where the state does.
            if let last = report.segments.last, !last.beforeCheckpoint,
               (last.lastLSN ?? (last.firstLSN - 1)) == lastAssigned.rawValue {
                let file = try io.open(directory + "/" + last.name, create: false)
                active = file
                activeBytes = last.validBytes
                activeAllocatedBytes = try file.size()
            }

            let duration = DispatchTime.now().uptimeNanoseconds - started
            counters.recoveryDurationNs = duration
            counters.recoveryRecords = UInt64(report.recordsAfterCheckpoint)
            counters.recoveryBytes = report.bytesAfterCheckpoint
            counters.keys = UInt64(store.keyCount)
            recoveryReport = RecoveryReport(
                checkpointLSN: checkpointLSN.rawValue, recordsReplayed: report.recordsAfterCheckpoint,
                bytesReplayed: report.bytesAfterCheckpoint, segments: report.segments.count, tornTail: report.tornTail,
                removedTemporaryFiles: temporary, lastLSN: report.lastLSN, lastEpoch: report.lastEpoch, durationNs: duration)
        } catch let error as StorageIOError {
            throw StorageError.io(error)
        }
        let thread = Thread { [self] in flusherLoop() }
        thread.name = "aerodb-wal-flusher"
        thread.start()
    }

    /// Flushes what is pending, stops the flusher and closes files. Later calls throw `.closed`.
    public func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !flusherExited || checkpointRunning { condition.wait() }
        condition.unlock()
        active?.close()
        active = nil
        directoryLock.release()
    }

    deinit {
        condition.lock()
        let running = !flusherExited
        condition.unlock()
        precondition(!running, "StorageEngine released without close()")
    }

    // MARK: Positions and state

    public var durableLSN: LSN { locked { durable } }
    public var appliedLSN: LSN { locked { durable } }
    /// The last LSN assigned (durable or about to be).
    public var lastLSN: LSN { locked { lastAssigned } }
    /// The epoch of the last durable record (zero when the log is empty).
    public var lastEpoch: Epoch { locked { durableEpoch } }
    /// The authority's current epoch.
    public var currentEpoch: Epoch { locked { authorityState.epoch } }
    public var authority: Authority { locked { authorityState } }
    public var isFenced: Bool { locked { fenced } }
    /// Why the WAL failed, if it did (sticky until reopened).
    public var failureReason: String? { locked { failure } }
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

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    // MARK: Reads

    /// A consistent read view as of the current durable LSN. It never changes; release it by
    /// dropping the reference (versions it needs are kept until then).
    public func snapshot() -> Snapshot {
        let (lsn, generation): (LSN, UInt64) = locked {
            snapshotCounts[durable.rawValue, default: 0] += 1
            return (durable, self.generation)
        }
        return Snapshot(engine: self, lsn: lsn, generation: generation)
    }

    /// Reads `key` at the current durable LSN.
    public func get(_ key: String) -> [UInt8]? {
        locked { store.get(key, at: durable) }
    }

    fileprivate func read(_ key: String, at lsn: LSN, generation: UInt64) -> [UInt8]? {
        locked {
            if generation == self.generation { return store.get(key, at: lsn) }
            guard let retired = retiredStores[generation] else { preconditionFailure("snapshot of a released store generation \(generation)") }
            return retired.store.get(key, at: lsn)
        }
    }

    fileprivate func scan(prefix: String, at lsn: LSN, limit: Int, after: String?, generation: UInt64) -> [(key: String, value: [UInt8])] {
        locked {
            if generation == self.generation { return store.scan(prefix: prefix, at: lsn, limit: limit, after: after) }
            guard retiredStores[generation] != nil else { preconditionFailure("snapshot of a released store generation \(generation)") }
            return retiredStores[generation]!.store.scan(prefix: prefix, at: lsn, limit: limit, after: after)
        }
    }

    fileprivate func release(_ lsn: LSN, generation: UInt64) {
        locked {
            if generation != self.generation {
                guard let retired = retiredStores[generation], retired.snapshots > 0 else { preconditionFailure("snapshot released twice") }
                retiredStores[generation] = retired.snapshots == 1 ? nil : (retired.store, retired.snapshots - 1)
                return
            }
            let n = snapshotCounts[lsn.rawValue, default: 0]
            precondition(n > 0, "snapshot released twice")
            snapshotCounts[lsn.rawValue] = n == 1 ? nil : n - 1
        }
    }

    /// The lowest LSN a live or future snapshot can read at (M2). Caller holds the lock.
    private func oldestNeededLocked() -> LSN {
        let oldestSnapshot = snapshotCounts.keys.min().map { LSN($0) } ?? durable
        return min(oldestSnapshot, durable)
    }

    /// Version chain lengths (tests check reclamation, M2).
    func versionChainLengthsForTesting() -> [Int] {
        locked { store.chains.values.map(\.count) }
    }

    // MARK: Local commits (primary)

    /// Commits `transaction`; returns its LSN once durable. Throws `.preconditionFailed` (nothing
    /// written), `.notWritable` on a replica or a fenced primary, `.walFailed` after a failed
    /// write or sync (the transaction may or may not be in the log; it was not acknowledged).
    public func commit(_ transaction: Transaction) async throws -> LSN {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LSN, any Error>) in
            enqueue(transaction) { continuation.resume(with: $0) }
        }
    }

    /// `commit` for callers that are not async (the command line, a crash-test child, threads).
    /// The calling thread leads the flush itself when none is running (leader/follower group
    /// commit: no thread hand-off for a lone writer); otherwise it waits for the running one and
    /// the next, which carries its record together with everyone else's.
    public func commitBlocking(_ transaction: Transaction) throws -> LSN {
        condition.lock()
        defer { condition.unlock() }
        let lsn: LSN
        do {
            lsn = try enqueueLocked(transaction)
        } catch {
            counters.commitFailures += 1
            throw error
        }
        while true {
            if durable >= lsn { return lsn }
            if let failure { throw StorageError.walFailed(failure) }
            if !flushInProgress && !pending.isEmpty {
                flushLocked()
            } else {
                condition.wait()
            }
        }
    }

    private func enqueue(_ transaction: Transaction, done: @escaping @Sendable (Result<LSN, any Error>) -> Void) {
        condition.lock()
        do {
            let lsn = try enqueueLocked(transaction)
            waiters.append((lsn, done))
            condition.broadcast()
            condition.unlock()
        } catch {
            counters.commitFailures += 1
            condition.unlock()
            done(.failure(error))
        }
    }

    private func enqueueLocked(_ transaction: Transaction) throws -> LSN {
        try checkWritableLocked()
        guard authorityState.role == .primary, !fenced else {
            throw StorageError.notWritable(role: authorityState.role, following: authorityState.following, epoch: authorityState.epoch)
        }
        if let error = transaction.validationError() { throw error }
        for case .valueEquals(let key, let expected) in transaction.preconditions where store.latest(key) != expected {
            throw StorageError.preconditionFailed(key: key)
        }
        let record = WALRecord(kind: .transaction, epoch: authorityState.epoch, lsn: lastAssigned.next,
                               payload: TransactionCodec.encode(transaction.mutations))
        appendLocked(record, mutations: transaction.mutations)
        counters.commits += 1
        return record.lsn
    }

    private func checkWritableLocked() throws {
        // Back-pressure; and no record is taken while a re-seed in place replaces the log (E8).
        while !closing && failure == nil && (pending.count >= options.pendingBytesMax || reseeding) { condition.wait() }
        if closing { throw StorageError.closed }
        if let failure { throw StorageError.walFailed(failure) }
    }

    /// Adds a record to the pending buffer and applies it to the version store. Lock held.
    private func appendLocked(_ record: WALRecord, mutations: [Mutation]) {
        precondition(record.lsn == lastAssigned.next, "record LSN \(record.lsn) is not next after \(lastAssigned)")
        precondition(record.epoch >= lastAssignedEpoch, "record epoch \(record.epoch) below \(lastAssignedEpoch)")
        if pending.isEmpty { pendingFirst = record.lsn }
        record.encode(into: &pending)
        pendingRecords += 1
        lastAssigned = record.lsn
        lastAssignedEpoch = record.epoch
        let oldest = oldestNeededLocked()
        for m in mutations {
            switch m {
            case .put(let key, let value): store.apply(key, value: value, lsn: record.lsn, oldestNeeded: oldest)
            case .delete(let key): store.apply(key, value: nil, lsn: record.lsn, oldestNeeded: oldest)
            }
        }
    }

    // MARK: Replicated appends (replica)

    /// Appends records received from the primary, with their LSNs and epochs, and returns the
    /// last one's LSN once durable. Refuses (nothing appended from the failing record on) when a
    /// record is not the next LSN (`.replicationGap`), its epoch is lower than the log's or not
    /// accepted by the authority file, or the first record of an epoch is not at the start LSN
    /// the epoch history names (`.epochLineage`). Records before a refused one stay appended.
    public func appendReplicated(_ records: [WALRecord]) async throws -> LSN {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LSN, any Error>) in
            enqueueReplicated(records) { continuation.resume(with: $0) }
        }
    }

    public func appendReplicatedBlocking(_ records: [WALRecord]) throws -> LSN {
        let box = ResultBox()
        enqueueReplicated(records) { box.set($0) }
        return try box.wait()
    }

    /// `appendReplicated` without waiting (E6): when this returns, the records are appended
    /// (pending, applied once durable) or refused; `completion` runs once the flush that makes
    /// them durable finished (with the batch's last LSN), or with the refusal. Blocks only while
    /// the pending buffer is full (back-pressure), never for a write or sync. Callers that hand
    /// over several batches must do so in LSN order, one at a time (the engine checks, E4).
    public func appendReplicated(_ records: [WALRecord], completion: @escaping @Sendable (Result<LSN, any Error>) -> Void) {
        enqueueReplicated(records, done: completion)
    }

    private func enqueueReplicated(_ records: [WALRecord], done: @escaping @Sendable (Result<LSN, any Error>) -> Void) {
        condition.lock()
        var refusal: (any Error)?
        do {
            try checkWritableLocked()
            guard authorityState.role == .replica else {
                throw StorageError.notWritable(role: authorityState.role, following: authorityState.following, epoch: authorityState.epoch)
            }
            for record in records {
                try appendReplicatedLocked(record)
            }
        } catch {
            refusal = error
        }
        let target = lastAssigned
        if let refusal, records.first.map({ $0.lsn > target }) ?? true {
            condition.unlock()
            done(.failure(refusal))
            return
        }
        // Wait for what was appended; report the refusal after it is durable.
        let wrapped: @Sendable (Result<LSN, any Error>) -> Void = { [refusal] result in
            if let refusal, case .success = result { done(.failure(refusal)) } else { done(result) }
        }
        if durable >= target {
            condition.unlock()
            wrapped(.success(target))
            return
        }
        waiters.append((target, wrapped))
        condition.broadcast()
        condition.unlock()
    }

    private func appendReplicatedLocked(_ record: WALRecord) throws {
        guard record.lsn == lastAssigned.next else {
            throw StorageError.replicationGap(expected: lastAssigned.next, received: record.lsn)
        }
        if record.epoch < lastAssignedEpoch {
            throw StorageError.epochLineage("record \(record.lsn) has epoch \(record.epoch), lower than the log's epoch \(lastAssignedEpoch)")
        }
        if record.epoch > authorityState.epoch {
            throw StorageError.epochLineage("record \(record.lsn) has epoch \(record.epoch); the authority file is at epoch \(authorityState.epoch) (accept the epoch first)")
        }
        if record.epoch > lastAssignedEpoch {
            guard let entry = authorityState.history.first(where: { $0.epoch == record.epoch }) else {
                throw StorageError.epochLineage("record \(record.lsn) opens epoch \(record.epoch), which the epoch history does not contain")
            }
            guard entry.startLSN == record.lsn else {
                throw StorageError.epochLineage("record \(record.lsn) opens epoch \(record.epoch), but the epoch history says it starts at LSN \(entry.startLSN)")
            }
        }
        var mutations: [Mutation] = []
        if record.kind == .transaction {
            guard let decoded = TransactionCodec.decode(record.payload) else {
                throw StorageError.epochLineage("record \(record.lsn) has a malformed transaction payload")
            }
            mutations = decoded
        }
        guard record.payload.count <= WALFormat.recordPayloadBytesMax else {
            throw StorageError.valueTooLarge(key: "", bytes: record.payload.count)
        }
        appendLocked(record, mutations: mutations)
        counters.replicatedRecords += 1
    }

    // MARK: Authority, fencing, promotion

    /// Replaces the authority file atomically after checking A2/A3 (`Authority.successorProblem`).
    /// Waits until everything pending is durable first, so an epoch change never overtakes the log.
    @discardableResult
    public func updateAuthority(_ change: (Authority) throws -> Authority) throws -> Authority {
        condition.lock()
        defer { condition.unlock() }
        return try updateAuthorityLocked(change)
    }

    private func updateAuthorityLocked(_ change: (Authority) throws -> Authority) throws -> Authority {
        while reseeding && !closing { condition.wait() }  // E8: the re-seed writes the authority file
        if closing { throw StorageError.closed }
        let next = try change(authorityState)
        if let problem = authorityState.successorProblem(next) { throw StorageError.authority(problem) }
        if next.epoch < lastAssignedEpoch {
            throw StorageError.authority("epoch \(next.epoch) is below the WAL's epoch \(lastAssignedEpoch)")
        }
        do {
            try AuthorityFile.write(next, directory: directory, io: io)
        } catch let error as StorageIOError {
            throw StorageError.io(error)
        }
        authorityState = next
        return next
    }

    /// Stops local commits (in memory; `unfence` lifts it), waits until every commit already
    /// accepted is durable or failed, and returns the final durable LSN: the demotion receipt.
    public func fence() async throws -> LSN {
        let target: LSN = locked {
            fenced = true
            return lastAssigned
        }
        return try await waitDurable(target)
    }

    public func unfence() {
        locked { fenced = false }
    }

    /// Makes this node the primary of `epoch` (> current): writes the authority file (role
    /// primary, the history entry starting at the next LSN) durably, then appends an
    /// `.epochStart` record at that LSN. `durability` is recorded in the entry: what
    /// "acknowledged" means in the new epoch. Returns the new history entry.
    public func promote(to epoch: Epoch, durability: EpochDurability? = nil) async throws -> EpochHistoryEntry {
        let start = try await waitDurable(lastLSN).next
        let entry = EpochHistoryEntry(epoch: epoch, primary: authority.nodeID, startLSN: start, durability: durability)
        // The authority file and the epoch-start record are made under one hold of the lock:
        // once the role is primary a local commit could otherwise take LSN `start` first.
        // checkWritableLocked may wait (releasing the lock), so it runs before the authority
        // changes; from there on the lock is held until the record is appended.
        let lsn: LSN = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LSN, any Error>) in
            condition.lock()
            do {
                try checkWritableLocked()
                _ = try updateAuthorityLocked { current in
                    guard epoch > current.epoch else { throw StorageError.authority("promotion to epoch \(epoch) is not above the current epoch \(current.epoch)") }
                    guard start == self.lastAssigned.next else { throw StorageError.authority("the log moved during promotion") }
                    return Authority(nodeID: current.nodeID, role: .primary, epoch: epoch, following: nil, history: current.history + [entry])
                }
                let record = WALRecord(kind: .epochStart, epoch: epoch, lsn: lastAssigned.next, payload: [])
                precondition(record.lsn == start, "a record overtook the promotion")
                appendLocked(record, mutations: [])
                waiters.append((record.lsn, { continuation.resume(with: $0) }))
                condition.broadcast()
                condition.unlock()
            } catch {
                condition.unlock()
                continuation.resume(throwing: error)
            }
        }
        precondition(lsn == start)
        return entry
    }

    /// Resumes once `lsn` is durable (or throws when the WAL failed).
    public func waitDurable(_ lsn: LSN) async throws -> LSN {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LSN, any Error>) in
            condition.lock()
            // Waiters are kept in LSN order and resumed by the flush that covers them (E6): a
            // wait for an LSN no record holds yet would break that order and could be skipped
            // by a re-seed in place (E8). Every caller waits for an LSN it saw assigned.
            precondition(lsn <= lastAssigned, "waitDurable(\(lsn)) past the last assigned LSN \(lastAssigned)")
            if durable >= lsn {
                let d = durable
                condition.unlock()
                continuation.resume(returning: d)
                return
            }
            if let failure {
                condition.unlock()
                continuation.resume(throwing: StorageError.walFailed(failure))
                return
            }
            waiters.append((lsn, { continuation.resume(with: $0) }))
            condition.unlock()
        }
    }

    // MARK: Durable listeners

    public struct DurableListenerID: Hashable, Sendable {
        let rawValue: UInt64
    }

    /// Calls `listener` with the durable LSN after every successful flush (E7): on the flushing
    /// thread, with no lock held; it must hand work off rather than block.
    public func addDurableListener(_ listener: @escaping @Sendable (LSN) -> Void) -> DurableListenerID {
        locked {
            let id = DurableListenerID(rawValue: nextListenerID)
            nextListenerID += 1
            durableListeners[id.rawValue] = listener
            return id
        }
    }

    /// After this returns no flush that starts later calls the listener (one finishing may).
    public func removeDurableListener(_ id: DurableListenerID) {
        _ = locked { durableListeners.removeValue(forKey: id.rawValue) }
    }

    // MARK: The flusher (group commit)

    /// The flusher thread: flushes whenever records are pending and no one else is flushing
    /// (async committers and replicated appends rely on it; blocking committers lead their own
    /// flush, see `commitBlocking`).
    private func flusherLoop() {
        condition.lock()
        while true {
            while (pending.isEmpty || flushInProgress) && !closing { condition.wait() }
            if closing {
                if flushInProgress { condition.wait(); continue }
                if pending.isEmpty || failure != nil { break }
            }
            flushLocked()
        }
        flusherExited = true
        let orphans = waiters
        waiters.removeAll()
        condition.broadcast()
        condition.unlock()
        for w in orphans { w.done(.failure(failure.map { StorageError.walFailed($0) } ?? StorageError.closed)) }
    }

    /// Writes and syncs everything pending as one batch (one write, one sync: group commit),
    /// then publishes the new durable LSN and resumes the waiters it covers. Called with the
    /// lock held and no flush in progress; returns with the lock held. The I/O runs unlocked.
    private func flushLocked() {
        precondition(!flushInProgress && !pending.isEmpty, "flushLocked: nothing to flush or a flush is running")
        flushInProgress = true
        var batch: [UInt8] = []
        swap(&batch, &pending)
        pending.reserveCapacity(batch.count)
        let first = pendingFirst
        let last = lastAssigned
        let lastEpoch = lastAssignedEpoch
        let records = pendingRecords
        pendingRecords = 0
        let alreadyFailed = failure != nil
        condition.broadcast()  // back-pressure waiters: the pending buffer is empty again
        condition.unlock()

        var ioError: (any Error)?
        if !alreadyFailed {
            do {
                if active == nil || activeBytes >= options.segmentBytesMax {
                    try rotate(firstLSN: first)
                }
                let end = activeBytes + UInt64(batch.count)
                if end > activeAllocatedBytes {
                    let chunk = max(end - activeAllocatedBytes, min(Self.preallocationBytes, options.segmentBytesMax))
                    try active!.writeAll([UInt8](repeating: 0, count: Int(chunk)), at: activeAllocatedBytes)
                    activeAllocatedBytes += chunk
                }
                try active!.writeAll(batch, at: activeBytes)
                try active!.sync()
                activeBytes = end
            } catch {
                ioError = error
            }
        }

        condition.lock()
        flushInProgress = false
        var ready: [(lsn: LSN, done: @Sendable (Result<LSN, any Error>) -> Void)] = []
        var outcome: Result<LSN, any Error>
        var trigger = false
        var listeners: [@Sendable (LSN) -> Void] = []
        if let ioError, failure == nil { failure = "\(ioError)" }
        if let failure {
            // E2: sticky; nothing pending or waiting will be acknowledged.
            ready = waiters
            waiters.removeAll()
            counters.commitFailures += UInt64(ready.count)
            outcome = .failure(StorageError.walFailed(failure))
        } else {
            durable = last
            durableEpoch = lastEpoch
            counters.walWrites += 1
            counters.fsyncs += 1
            counters.walBytesWritten += UInt64(batch.count)
            counters.recordBatch(records: records)
            walBytesSinceCheckpoint += UInt64(batch.count)
            let n = waiters.prefix { $0.lsn <= last }.count
            ready = Array(waiters.prefix(n))
            waiters.removeFirst(n)
            trigger = options.checkpointWALBytesTrigger > 0 && walBytesSinceCheckpoint >= options.checkpointWALBytesTrigger && !checkpointRunning
            outcome = .success(last)
            if !durableListeners.isEmpty { listeners = Array(durableListeners.values) }
        }
        condition.broadcast()
        if !ready.isEmpty || trigger || !listeners.isEmpty {
            condition.unlock()
            // E7: announced before the waiters resume, so shipping starts as early as it can.
            for listener in listeners { listener(last) }
            for w in ready {
                switch outcome {
                case .success: w.done(.success(w.lsn))
                case .failure(let e): w.done(.failure(e))
                }
            }
            if trigger { startBackgroundCheckpoint() }
            condition.lock()
        }
    }

    /// E3: creates `wal-<firstLSN>.log`, writes and syncs its header, syncs the directory.
    private func rotate(firstLSN: LSN) throws {
        active?.close()
        active = nil
        let name = WALFormat.segmentName(firstLSN: firstLSN)
        let file = try io.open(directory + "/" + name, create: true)
        try file.truncate(to: 0)
        try file.writeAll(WALFormat.encodeSegmentHeader(firstLSN: firstLSN, nodeID: authority.nodeID), at: 0)
        try file.sync()
        try io.syncDirectory(directory)
        active = file
        activeBytes = UInt64(WALFormat.segmentHeaderBytes)
        activeAllocatedBytes = activeBytes
        locked {
            segments.append((name, firstLSN))
            counters.segmentsCreated += 1
        }
    }

    // MARK: Checkpoints

    /// Takes a checkpoint at the current durable LSN (E5) and removes WAL segments and older
    /// checkpoints it covers. Returns its LSN. Runs its I/O on a separate thread.
    public func checkpoint() async throws -> LSN {
        try await runOnThread { try self.checkpointBlocking() }
    }

    public func checkpointBlocking() throws -> LSN {
        let (snapshot, epoch): (Snapshot, Epoch) = try locked {
            while (checkpointRunning || reseeding) && !closing { condition.wait() }
            if closing { throw StorageError.closed }
            if let failure { throw StorageError.walFailed(failure) }
            checkpointRunning = true
            snapshotCounts[durable.rawValue, default: 0] += 1
            return (Snapshot(engine: self, lsn: durable, generation: generation), durableEpoch)
        }
        defer {
            locked {
                checkpointRunning = false
                condition.broadcast()
            }
        }
        let lsn = snapshot.lsn
        let (keys, bytesAtStart): ([String], UInt64) = locked { (store.keysInOrder(), walBytesSinceCheckpoint) }
        if lsn == locked({ checkpointLSN }) && lsn != .zero { return lsn }
        do {
            var entries: [(String, [UInt8])] = []
            entries.reserveCapacity(keys.count)
            let chunk = 4096
            var i = 0
            while i < keys.count {
                let slice = keys[i..<min(i + chunk, keys.count)]
                locked {
                    for key in slice { if let v = store.get(key, at: lsn) { entries.append((key, v)) } }
                }
                i += chunk
            }
            let bytes = CheckpointFormat.encode(lsn: lsn, epoch: epoch, entries: entries)
            let name = CheckpointFormat.fileName(lsn: lsn)
            let temp = directory + "/" + name + ".tmp"
            let file = try io.open(temp, create: true)
            defer { file.close() }
            try file.truncate(to: 0)
            try file.writeAll(bytes, at: 0)
            try file.sync()
            try io.rename(temp, to: directory + "/" + name)
            try io.syncDirectory(directory)
            locked {
                checkpointLSN = lsn
                counters.checkpoints += 1
                walBytesSinceCheckpoint -= min(walBytesSinceCheckpoint, bytesAtStart)
                let oldest = oldestNeededLocked()
                _ = store.sweep(oldestNeeded: oldest)
            }
            try removeCoveredFiles(checkpoint: lsn, keep: name)
            return lsn
        } catch let error as StorageIOError {
            locked { counters.checkpointFailures += 1 }
            throw StorageError.io(error)
        }
    }

    /// Removes older checkpoints and every segment whose records are all at or below `lsn`
    /// (its successor starts at or below lsn+1). The active (last) segment is never removed.
    private func removeCoveredFiles(checkpoint lsn: LSN, keep: String) throws {
        let names = try io.list(directory)
        var doomed = names.filter { CheckpointFormat.lsn(ofFileName: $0) != nil && $0 != keep && CheckpointFormat.lsn(ofFileName: $0)! < lsn }
        let covered: [String] = locked {
            var result: [String] = []
            for (i, s) in segments.enumerated().dropLast() where segments[i + 1].firstLSN <= lsn.next {
                result.append(s.name)
            }
            segments.removeAll { result.contains($0.name) }
            counters.segmentsRemoved += UInt64(result.count)
            return result
        }
        doomed += covered
        for name in doomed { try io.remove(directory + "/" + name) }
        if !doomed.isEmpty { try io.syncDirectory(directory) }
    }

    private func startBackgroundCheckpoint() {
        let thread = Thread { [self] in
            do { _ = try checkpointBlocking() } catch { locked { counters.checkpointFailures += 1 } }
        }
        thread.name = "aerodb-checkpoint"
        thread.start()
    }

    /// The newest checkpoint's bytes and LSN, to send to a replica that must be re-seeded.
    /// Takes one first if none exists.
    public func checkpointImage() throws -> (lsn: LSN, bytes: [UInt8]) {
        var lsn = latestCheckpointLSN
        if lsn == .zero { lsn = try checkpointBlocking() }
        let file = try wrapIO { try io.open(directory + "/" + CheckpointFormat.fileName(lsn: lsn), create: false) }
        defer { file.close() }
        return (lsn, try wrapIO { try file.readAll() })
    }

    /// Re-seeds a closed data directory from a checkpoint image: the explicit, only way to cut a
    /// replica's WAL back (to a branch point). Verifies the image, removes every WAL segment and
    /// checkpoint, installs the image durably. The authority file is kept. Call with the engine
    /// for `directory` closed; then open it again.
    public static func installCheckpoint(_ bytes: [UInt8], directory: String, io: any StorageIO = PosixIO()) throws -> LSN {
        let image: CheckpointFormat.Image
        switch CheckpointFormat.decode(bytes) {
        case .failure(let f): throw StorageError.badCheckpoint("checkpoint image: \(f.why)")
        case .success(let i): image = i
        }
        return try wrapIO {
            try io.createDirectory(directory)
            let name = CheckpointFormat.fileName(lsn: image.lsn)
            let temp = directory + "/" + name + ".tmp"
            let file = try io.open(temp, create: true)
            defer { file.close() }
            try file.truncate(to: 0)
            try file.writeAll(bytes, at: 0)
            try file.sync()
            for n in try io.list(directory) where WALFormat.segmentFirstLSN(n) != nil || CheckpointFormat.lsn(ofFileName: n) != nil {
                try io.remove(directory + "/" + n)
            }
            try io.syncDirectory(directory)
            try io.rename(temp, to: directory + "/" + name)
            try io.syncDirectory(directory)
            return image.lsn
        }
    }

    // MARK: Re-seeding in place (E8)

    /// Replaces this running replica's state by a checkpoint image (`bytes`) and adopts
    /// `authority` (a replica of this node, at an epoch not below the current one, whose history
    /// extends the current one). The image must be strictly ahead of the durable LSN, and nothing
    /// may be pending: the caller has stopped handing replicated records over and let them
    /// settle. Refusals change nothing; a failure while installing fails the WAL (E2), and the
    /// next open finishes or discards the install (RS1). Runs its I/O on a separate thread.
    public func reseedInPlace(_ bytes: [UInt8], authority next: Authority) async throws -> ReseedInstall.ImageFacts {
        try await runOnThread { try self.reseedInPlaceBlocking(bytes, authority: next) }
    }

    func reseedInPlaceBlocking(_ bytes: [UInt8], authority next: Authority) throws -> ReseedInstall.ImageFacts {
        let facts = try ReseedInstall.verify(bytes, history: next.history)  // RS2, before anything
        guard case .success(let image) = CheckpointFormat.decode(bytes) else { preconditionFailure("verified image does not decode") }
        var fresh = VersionStore()
        for (key, value) in image.entries { fresh.load(key, value: value, lsn: image.lsn) }

        condition.lock()
        while (reseeding || checkpointRunning || flushInProgress) && !closing { condition.wait() }
        do {
            if closing { throw StorageError.closed }
            if let failure { throw StorageError.walFailed(failure) }
            let current = authorityState
            guard current.role == .replica else {
                throw StorageError.notWritable(role: current.role, following: current.following, epoch: current.epoch)
            }
            guard next.role == .replica, next.nodeID == current.nodeID, next.epoch >= current.epoch,
                  next.history.starts(with: current.history)
            else {
                throw StorageError.authority("a re-seed in place adopts a replica authority of \(current.nodeID) at an epoch not below \(current.epoch) "
                    + "whose history extends the local one; got \(next.nodeID) at epoch \(next.epoch)")
            }
            guard pending.isEmpty && lastAssigned == durable else {
                throw StorageError.authority("a re-seed in place needs nothing pending (records through \(lastAssigned) assigned, \(durable) durable)")
            }
            guard image.lsn > durable else {
                throw StorageError.authority("checkpoint image at LSN \(image.lsn) is not ahead of the durable LSN \(durable); "
                    + "re-seeding in place never cuts the WAL back")
            }
        } catch {
            condition.unlock()
            throw error
        }
        reseeding = true
        flushInProgress = true  // the flush slot: no record is written, the active segment is ours
        condition.unlock()

        active?.close()
        active = nil
        var installError: (any Error)?
        do {
            try ReseedInstall.install(bytes, authority: next, directory: directory, io: io)
        } catch {
            installError = error
        }

        condition.lock()
        defer {
            reseeding = false
            flushInProgress = false
            condition.broadcast()
            condition.unlock()
        }
        if let installError {
            // E2: the directory may be half applied; nothing more is written or acknowledged.
            if failure == nil { failure = "re-seed in place failed: \(installError)" }
            throw installError
        }
        let live = snapshotCounts.values.reduce(0, +)
        if live > 0 { retiredStores[generation] = (store, live) }
        generation += 1
        snapshotCounts = [:]
        store = fresh
        authorityState = next
        lastAssigned = image.lsn
        lastAssignedEpoch = image.epoch
        durable = image.lsn
        durableEpoch = image.epoch
        checkpointLSN = image.lsn
        segments = []
        readCursor = nil
        walBytesSinceCheckpoint = 0
        activeBytes = 0
        activeAllocatedBytes = 0
        return facts
    }

    // MARK: Streaming the WAL

    /// Durable records from `lsn` on, at most about `bytesMax` bytes (at least one record when
    /// one exists). `.walGone` when the segment holding `lsn` was removed after a checkpoint.
    public func readWAL(from lsn: LSN, bytesMax: Int = 1 << 20) throws -> WALReadResult {
        precondition(lsn > .zero, "LSNs start at 1")
        let (durableNow, list, cursor, ckpt) = locked { (durable, segments, readCursor, checkpointLSN) }
        if lsn > durableNow { return .records([]) }
        guard let index = list.lastIndex(where: { $0.firstLSN <= lsn }) else {
            return .walGone(oldestAvailable: list.first?.firstLSN, checkpointLSN: ckpt)
        }
        var segment = index
        var offset = UInt64(WALFormat.segmentHeaderBytes)
        var next = list[index].firstLSN
        if let cursor, cursor.next == lsn, let i = list.firstIndex(where: { $0.name == cursor.segment }) {
            segment = i
            offset = cursor.offset
            next = lsn
        }
        var out: [WALRecord] = []
        var bytes = 0
        while next <= durableNow {
            let name = list[segment].name
            let file: any StorageFile
            do { file = try io.open(directory + "/" + name, create: false) } catch {
                return .walGone(oldestAvailable: locked { segments.first?.firstLSN }, checkpointLSN: locked { checkpointLSN })
            }
            defer { file.close() }
            let size = try wrapIO { try file.size() }
            // The segment's records end where the next segment begins (zero-filled space may follow).
            let segmentEnd = segment + 1 < list.count ? list[segment + 1].firstLSN : LSN(UInt64.max)
            while next <= durableNow && next < segmentEnd && offset < size {
                let header = try wrapIO { try file.read(at: offset, count: WALFormat.recordHeaderBytes) }
                guard header.count == WALFormat.recordHeaderBytes else { break }
                let length = Int(header[...].loadLE(UInt32.self, at: 0))
                let whole = try wrapIO { try file.read(at: offset, count: WALFormat.recordHeaderBytes + length) }
                let decoded = whole.withUnsafeBytes { WALRecord.decode($0, at: 0) }
                guard case .success(let (record, size)) = decoded, record.lsn == next else {
                    throw StorageError.damaged(WALDamage(kind: .corruptRecord, segment: name, offset: offset, lsn: next,
                                                         detail: "durable record fails verification on read"))
                }
                offset += UInt64(size)
                next = next.next
                if record.lsn >= lsn {
                    out.append(record)
                    bytes += size
                    if bytes >= bytesMax { break }
                }
            }
            if bytes >= bytesMax || next > durableNow { break }
            guard segment + 1 < list.count else { break }
            segment += 1
            offset = UInt64(WALFormat.segmentHeaderBytes)
            next = list[segment].firstLSN
        }
        let cursorSegment = list[segment].name
        locked { readCursor = (next, cursorSegment, offset) }
        return .records(out)
    }

    // MARK: Helpers

    private func wrapIO<T>(_ body: () throws -> T) throws -> T {
        try Self.wrapIO(body)
    }

    private static func wrapIO<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StorageIOError { throw StorageError.io(error) }
    }
}

/// A read view as of one committed LSN. Never changes; released on deinit.
public final class Snapshot: @unchecked Sendable {
    public let lsn: LSN
    private let engine: StorageEngine
    /// The store generation it reads (E8: a re-seed in place starts a new one).
    private let generation: UInt64

    fileprivate init(engine: StorageEngine, lsn: LSN, generation: UInt64) {
        self.engine = engine
        self.lsn = lsn
        self.generation = generation
    }

    deinit { engine.release(lsn, generation: generation) }

    public func get(_ key: String) -> [UInt8]? { engine.read(key, at: lsn, generation: generation) }

    /// Keys starting with `prefix`, ascending, at most `limit`, after `after` when given.
    public func scan(prefix: String, limit: Int = Int.max, after: String? = nil) -> [(key: String, value: [UInt8])] {
        engine.scan(prefix: prefix, at: lsn, limit: limit, after: after, generation: generation)
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
