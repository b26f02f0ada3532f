// StorageEngine+Commits.swift — local commits, waiting for durability, durable listeners, and
// the flush that drives `GroupCommit` (its write and sync).
//
// The write path (group commit):
//   commit → under the lock: check state and preconditions; the record takes lastLSN+1 and
//   joins the pending buffer (`GroupCommit.enqueue`, via `appendLocked`, which also applies
//   it to the version store); a waiter is registered → whoever flushes next (`flushLocked`:
//   the flusher thread for async commits and replicated appends, or a blocking committer
//   leading its own flush) takes the whole pending buffer (`beginFlush`), writes it to the
//   active segment and syncs once with the lock released, then reports (`finishFlush`),
//   which advances durableLSN and hands back every waiter up to it. Committers that arrive
//   while a sync runs share the next one.
//
// Invariants (docs/invariants.md, "Storage"):
//   S3 A commit is acknowledged only after the bytes holding it were written and synced:
//      waiters are resumed only from `finishFlush` after the sync returned. (`flushLocked`)
//   E3 Segment creation syncs the file and the directory before a record in the new segment
//      is acknowledged (`rotate`); removals are followed by a directory sync
//      (`removeCoveredFiles`, StorageEngine+Checkpoints.swift).
//   E4 Local commits require role primary and no fence (`enqueueLocked`); every write waits
//      out back-pressure and a re-seed in place and is refused after close or the failure
//      (`checkWritableLocked`).
//   E7 Durable listeners hear the new durable LSN after every successful flush, once per
//      flush, before its waiters resume, on the flushing thread with the lock released; they
//      must not block. Only durable LSNs are announced; two flushes led by different threads
//      may announce out of order, so a listener keeps the maximum. (`flushLocked`)

import AeroCore
import Foundation

extension StorageEngine {
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
            if commits.durableLSN >= lsn { return lsn }
            if let failure = commits.failure { throw StorageError.walFailed(failure) }
            if commits.canBeginFlush {
                flushLocked()
            } else {
                condition.wait()
            }
        }
    }

    private func enqueue(_ transaction: Transaction, done: @escaping Completion) {
        condition.lock()
        do {
            let lsn = try enqueueLocked(transaction)
            commits.addWaiter(for: lsn, done)
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
        let record = WALRecord(kind: .transaction, epoch: authorityState.epoch, lsn: commits.lastLSN.next,
                               payload: TransactionCodec.encode(transaction.mutations))
        appendLocked(record, mutations: transaction.mutations)
        counters.commits += 1
        return record.lsn
    }

    /// Waits out back-pressure and a re-seed in place (no record is taken while it replaces the
    /// log, E8); throws after close or the failure (E2). Lock held; it may wait (releasing it).
    func checkWritableLocked() throws {
        while !closing && commits.failure == nil && (commits.pendingBytes >= options.pendingBytesMax || commits.isReseeding) {
            condition.wait()
        }
        if closing { throw StorageError.closed }
        if let failure = commits.failure { throw StorageError.walFailed(failure) }
    }

    /// Adds a record to the pending buffer (S1, S2: `GroupCommit.enqueue` checks) and applies
    /// it to the version store. Lock held, straight after `checkWritableLocked` passed.
    func appendLocked(_ record: WALRecord, mutations: [Mutation]) {
        commits.enqueue(record)
        let oldest = oldestNeededLocked()
        for m in mutations {
            switch m {
            case .put(let key, let value): store.apply(key, value: value, lsn: record.lsn, oldestNeeded: oldest)
            case .delete(let key): store.apply(key, value: nil, lsn: record.lsn, oldestNeeded: oldest)
            }
        }
    }

    /// Resumes once `lsn` is durable (or throws when the WAL failed).
    public func waitDurable(_ lsn: LSN) async throws -> LSN {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LSN, any Error>) in
            condition.lock()
            // A wait for an LSN no record holds yet could be skipped by a re-seed in place
            // (E8) and would have no flush to resume it. Every caller waits for an LSN it saw
            // assigned.
            precondition(lsn <= commits.lastLSN, "waitDurable(\(lsn)) past the last assigned LSN \(commits.lastLSN)")
            if commits.durableLSN >= lsn {
                let d = commits.durableLSN
                condition.unlock()
                continuation.resume(returning: d)
                return
            }
            if let failure = commits.failure {
                condition.unlock()
                continuation.resume(throwing: StorageError.walFailed(failure))
                return
            }
            commits.addWaiter(for: lsn) { continuation.resume(with: $0) }
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
    /// flush, see `commitBlocking`). After `close` it drains what is pending, then exits.
    func flusherLoop() {
        condition.lock()
        while true {
            while !commits.canBeginFlush && !closing { condition.wait() }
            if closing {
                if commits.slot != .idle { condition.wait(); continue }
                if !commits.canBeginFlush { break }
            }
            flushLocked()
        }
        // Nothing pending or in flight, so by E1 nothing is assigned and not durable, and by E6
        // no waiter is left; after a failure none is either (E2).
        precondition(commits.waiters.isEmpty, "waiters left at close")
        lifecycle = .closed
        condition.broadcast()
        condition.unlock()
    }

    /// Writes and syncs everything pending as one batch (one write, one sync: group commit),
    /// then publishes the new durable LSN and resumes the waiters it covers. Called with the
    /// lock held and `commits.canBeginFlush`; returns with the lock held. The I/O runs unlocked.
    func flushLocked() {
        let batch = commits.beginFlush()
        condition.broadcast()  // back-pressure waiters: the pending buffer is empty again
        condition.unlock()

        var ioError: (any Error)?
        do {
            try writeBatch(batch)
        } catch {
            ioError = error
        }

        condition.lock()
        let outcome = commits.finishFlush(error: ioError.map { "\($0)" })
        var resumed: [GroupCommit<Completion>.Waiter] = []
        var failure: StorageError?
        var trigger = false
        var listeners: [@Sendable (LSN) -> Void] = []
        switch outcome {
        case .failed(let reason, let failed):
            // E2: sticky; nothing pending or waiting will be acknowledged.
            resumed = failed
            failure = .walFailed(reason)
            counters.commitFailures += UInt64(failed.count)
        case .durable(_, let ready):
            resumed = ready
            counters.walWrites += 1
            counters.fsyncs += 1
            counters.walBytesWritten += UInt64(batch.bytes.count)
            counters.recordBatch(records: batch.records)
            walBytesSinceCheckpoint += UInt64(batch.bytes.count)
            trigger = options.checkpointWALBytesTrigger > 0 && walBytesSinceCheckpoint >= options.checkpointWALBytesTrigger && !checkpointRunning
            if !durableListeners.isEmpty { listeners = Array(durableListeners.values) }
        }
        condition.broadcast()
        if !resumed.isEmpty || trigger || !listeners.isEmpty {
            condition.unlock()
            // E7: announced before the waiters resume, so shipping starts as early as it can.
            for listener in listeners { listener(batch.lastLSN) }
            for waiter in resumed {
                if let failure { waiter.completion(.failure(failure)) } else { waiter.completion(.success(waiter.lsn)) }
            }
            if trigger { startBackgroundCheckpoint() }
            condition.lock()
        }
    }

    /// The flush's I/O, run by the holder of the flush slot with the lock released: a new
    /// segment when needed (E3), preallocation, one write, one sync.
    private func writeBatch(_ batch: GroupCommit<Completion>.Batch) throws {
        if active == nil || activeBytes >= options.segmentBytesMax {
            try rotate(firstLSN: batch.firstLSN)
        }
        let end = activeBytes + UInt64(batch.bytes.count)
        if end > activeAllocatedBytes {
            let chunk = max(end - activeAllocatedBytes, min(Self.preallocationBytes, options.segmentBytesMax))
            try active!.writeAll([UInt8](repeating: 0, count: Int(chunk)), at: activeAllocatedBytes)
            activeAllocatedBytes += chunk
        }
        try active!.writeAll(batch.bytes, at: activeBytes)
        try active!.sync()
        activeBytes = end
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
}
