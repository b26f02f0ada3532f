// StorageEngine+Replica.swift — a replica appends the primary's records, with their LSNs and
// epochs, group-committed like local commits.
//
// Invariants (docs/invariants.md, "Storage"):
//   E4 Replicated appends require role replica (`enqueueReplicated`), the next LSN
//      (`storage.replica.lsn-gap`), an epoch not below the log's and accepted by the authority
//      file, and an epoch's first record at the start LSN its history entry names
//      (`storage.replica.epoch-lineage`). (`appendReplicatedLocked`)
//   E6 Replicated appends are group-committed like local commits: `appendReplicated` only
//      places the records (with their own LSNs) in the pending buffer and registers a
//      completion, so batches handed over while a flush runs share the next write and sync.
//      Completions run after the flush that made their records durable, in LSN order
//      (`GroupCommit` keeps waiters in LSN order). The caller alone orders its batches: the
//      engine never reorders, it refuses a record that is not the next LSN (E4).
//      (`enqueueReplicated`, `GroupCommit.finishFlush`)

import AeroCore
import Foundation

extension StorageEngine {
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

    private func enqueueReplicated(_ records: [WALRecord], done: @escaping Completion) {
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
        let target = commits.lastLSN
        if let refusal, records.first.map({ $0.lsn > target }) ?? true {
            condition.unlock()
            done(.failure(refusal))
            return
        }
        // Wait for what was appended; report the refusal after it is durable.
        let wrapped: Completion = { [refusal] result in
            if let refusal, case .success = result { done(.failure(refusal)) } else { done(result) }
        }
        if commits.durableLSN >= target {
            condition.unlock()
            wrapped(.success(target))
            return
        }
        commits.addWaiter(for: target, wrapped)
        condition.broadcast()
        condition.unlock()
    }

    private func appendReplicatedLocked(_ record: WALRecord) throws {
        let lastLSN = commits.lastLSN
        let lastEpoch = commits.lastEpoch
        guard record.lsn == lastLSN.next else {
            throw StorageError.replicationGap(expected: lastLSN.next, received: record.lsn)
        }
        if record.epoch < lastEpoch {
            throw StorageError.epochLineage("record \(record.lsn) has epoch \(record.epoch), lower than the log's epoch \(lastEpoch)")
        }
        if record.epoch > authorityState.epoch {
            throw StorageError.epochLineage("record \(record.lsn) has epoch \(record.epoch); the authority file is at epoch \(authorityState.epoch) (accept the epoch first)")
        }
        if record.epoch > lastEpoch {
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
}
