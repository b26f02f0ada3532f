// GroupCommit.swift — the engine's write path as a pure state machine: records pending, one
// batch in flight, waiters, the positions, and the sticky failure. No I/O, no lock, no clock:
// the engine (StorageEngine+Commits.swift) holds it under its lock, performs the write and
// sync a transition asks for, and reports back.
//
// Positions (LSNs; 0 means none):
//   lastLSN     the last LSN assigned to a record (`enqueue`)
//   durableLSN  the last LSN whose bytes were written and synced (`finishFlush`, storage S3)
//   The engine's appliedLSN is durableLSN: records reach the version store when enqueued, but
//   snapshots are taken at durableLSN, so nothing not yet durable is visible.
//
// States of the flush slot (at most one flush runs at a time; a re-seed in place holds the
// slot so no record is written meanwhile, storage E8):
//
//     idle ──beginFlush──▶ flushing ──finishFlush(nil)───────────▶ idle
//       │                     └─────finishFlush(error) ──▶ idle, failed (sticky)
//       └──beginReseed──▶ reseeding ──finishReseed──▶ idle
//                             └─────failReseed ──▶ idle, failed (sticky)
//
// Transitions: `enqueue` (a record joins the pending buffer), `addWaiter` (a completion waits
// for an LSN), `beginFlush` (idle → flushing: the whole pending buffer becomes the batch),
// `finishFlush` (flushing → idle: durable, or failed), `beginReseed` / `finishReseed` /
// `failReseed` (idle → reseeding → idle). Anything else traps (preconditionFailure).
//
// Invariants (checked by `checkInvariants()` after every transition):
//   E1 durableLSN ≤ lastLSN, durableEpoch ≤ lastEpoch, and neither position ever decreases
//      (a re-seed moves both forward together). Until a failure, the records between them
//      are exactly the batch in flight followed by the pending ones, with dense LSNs:
//      lastLSN = durableLSN + in-flight records + pending records.
//   E2 A failure is sticky: once `failure` is set it is never cleared, durableLSN never moves
//      again, nothing is pending, no waiter is left (`finishFlush` and `failReseed` hand every
//      waiter back to be failed) and no record or waiter is accepted (only a reopen — a new
//      engine, recovery — leaves it). So no acknowledgement follows a failed write or sync.
//   E6 Waiters are kept in LSN order, each for an LSN assigned and not yet durable
//      (durableLSN < lsn ≤ lastLSN); `finishFlush` resumes exactly those at or below the new
//      durableLSN, in LSN order, and the rest keep waiting for the next flush. Local commits
//      and replicated appends share one pending buffer, so batches handed over while a flush
//      runs share the next write and sync. The machine never reorders records: `enqueue`
//      takes only the next LSN, at an epoch not below the last one (storage S1, S2).

import AeroCore

struct GroupCommit<Completion> {
    struct Waiter {
        let lsn: LSN
        let completion: Completion
    }

    /// What `beginFlush` hands the engine to write and sync: the pending records, encoded.
    struct Batch {
        let bytes: [UInt8]
        let firstLSN: LSN
        let lastLSN: LSN
        let lastEpoch: Epoch
        let records: UInt64
    }

    enum Slot: Equatable {
        case idle
        /// A batch `firstLSN...lastLSN` is being written and synced.
        case flushing(firstLSN: LSN, lastLSN: LSN, lastEpoch: Epoch, records: UInt64)
        /// A re-seed in place replaces the log (storage E8).
        case reseeding
    }

    /// How a flush ended: the waiters it resumes, in LSN order.
    enum Outcome {
        /// Durable through `lsn`; `resumed` are the waiters at or below it.
        case durable(LSN, resumed: [Waiter])
        /// The write or sync failed (E2); `failed` is every waiter there was.
        case failed(reason: String, failed: [Waiter])
    }

    private(set) var lastLSN: LSN
    private(set) var lastEpoch: Epoch
    private(set) var durableLSN: LSN
    private(set) var durableEpoch: Epoch
    private(set) var pending: [UInt8] = []
    private(set) var pendingFirstLSN = LSN.zero
    private(set) var pendingRecords: UInt64 = 0
    private(set) var waiters: [Waiter] = []
    /// Why the WAL failed (E2); sticky.
    private(set) var failure: String?
    private(set) var slot: Slot = .idle
    /// durableLSN when the failure was set: it never moves after (E2).
    private var durableAtFailure: LSN?

    /// A log recovered through `lsn` (everything recovered is durable).
    init(recoveredThrough lsn: LSN, epoch: Epoch) {
        lastLSN = lsn
        lastEpoch = epoch
        durableLSN = lsn
        durableEpoch = epoch
        checkInvariants()
    }

    var pendingBytes: Int { pending.count }
    var isFlushing: Bool { if case .flushing = slot { return true } else { return false } }
    var isReseeding: Bool { slot == .reseeding }
    /// A flush can start now: the slot is free and records are pending (never after a failure,
    /// which leaves nothing pending).
    var canBeginFlush: Bool { slot == .idle && !pending.isEmpty }

    // MARK: Transitions

    /// Adds `record` (the next LSN, an epoch not below the last) to the pending buffer.
    mutating func enqueue(_ record: WALRecord) {
        defer { checkInvariants() }
        guard failure == nil, slot != .reseeding else {
            preconditionFailure("enqueue(\(record.lsn)) while \(failure.map { "failed: \($0)" } ?? "re-seeding")")
        }
        precondition(record.lsn == lastLSN.next, "record LSN \(record.lsn) is not next after \(lastLSN)")
        precondition(record.epoch >= lastEpoch, "record epoch \(record.epoch) below \(lastEpoch)")
        if pending.isEmpty { pendingFirstLSN = record.lsn }
        record.encode(into: &pending)
        pendingRecords += 1
        lastLSN = record.lsn
        lastEpoch = record.epoch
    }

    /// Registers `completion` to run once `lsn` (assigned, not yet durable) is durable (E6).
    mutating func addWaiter(for lsn: LSN, _ completion: Completion) {
        defer { checkInvariants() }
        guard failure == nil else { preconditionFailure("addWaiter(\(lsn)) after the failure: \(failure!)") }
        precondition(lsn > durableLSN && lsn <= lastLSN, "a waiter for \(lsn) outside (\(durableLSN), \(lastLSN)]")
        // After the last waiter at or below `lsn` (almost always the end: callers wait for the
        // LSN they just assigned), so the list stays in LSN order and equal LSNs keep arrival order.
        let index = waiters.lastIndex(where: { $0.lsn <= lsn }).map { $0 + 1 } ?? 0
        waiters.insert(Waiter(lsn: lsn, completion: completion), at: index)
    }

    /// idle → flushing: takes every pending record as one batch (one write, one sync).
    mutating func beginFlush() -> Batch {
        defer { checkInvariants() }
        guard canBeginFlush else { preconditionFailure("beginFlush in slot \(slot) with \(pendingRecords) records pending") }
        var bytes: [UInt8] = []
        swap(&bytes, &pending)
        pending.reserveCapacity(bytes.count)
        let batch = Batch(bytes: bytes, firstLSN: pendingFirstLSN, lastLSN: lastLSN, lastEpoch: lastEpoch, records: pendingRecords)
        pendingRecords = 0
        pendingFirstLSN = .zero
        slot = .flushing(firstLSN: batch.firstLSN, lastLSN: batch.lastLSN, lastEpoch: batch.lastEpoch, records: batch.records)
        return batch
    }

    /// flushing → idle. `error` nil: the batch is durable; the waiters it covers are resumed.
    /// Otherwise the WAL fails (E2): every waiter is failed and what was pending is dropped
    /// (never written, never acknowledged).
    mutating func finishFlush(error: String?) -> Outcome {
        defer { checkInvariants() }
        guard case .flushing(_, let last, let lastEpoch, _) = slot else { preconditionFailure("finishFlush in slot \(slot)") }
        slot = .idle
        if let error {
            return .failed(reason: error, failed: fail(error))
        }
        durableLSN = last
        durableEpoch = lastEpoch
        let n = waiters.prefix { $0.lsn <= last }.count
        let resumed = Array(waiters.prefix(n))
        waiters.removeFirst(n)
        return .durable(last, resumed: resumed)
    }

    /// idle → reseeding: the slot is held and nothing may be pending or in flight (the engine
    /// refuses a re-seed otherwise, before calling this).
    mutating func beginReseed() {
        defer { checkInvariants() }
        guard slot == .idle, failure == nil, pending.isEmpty, lastLSN == durableLSN else {
            preconditionFailure("beginReseed in slot \(slot), failure \(failure ?? "none"), \(pendingRecords) pending, \(lastLSN) assigned, \(durableLSN) durable")
        }
        precondition(waiters.isEmpty, "waiters with nothing pending")
        slot = .reseeding
    }

    /// reseeding → idle: the log now starts after `lsn` (a checkpoint image strictly ahead).
    mutating func finishReseed(at lsn: LSN, epoch: Epoch) {
        defer { checkInvariants() }
        guard slot == .reseeding else { preconditionFailure("finishReseed in slot \(slot)") }
        precondition(lsn > durableLSN && epoch >= durableEpoch, "a re-seed moves only forward (\(durableLSN) to \(lsn))")
        slot = .idle
        lastLSN = lsn
        lastEpoch = epoch
        durableLSN = lsn
        durableEpoch = epoch
    }

    /// reseeding → idle, failed (E2): the directory may be half applied.
    mutating func failReseed(_ reason: String) {
        defer { checkInvariants() }
        guard slot == .reseeding else { preconditionFailure("failReseed in slot \(slot)") }
        slot = .idle
        let left = fail(reason)
        precondition(left.isEmpty, "waiters during a re-seed")
    }

    /// Sets the sticky failure (the first reason stays) and hands back every waiter.
    private mutating func fail(_ reason: String) -> [Waiter] {
        if failure == nil {
            failure = reason
            durableAtFailure = durableLSN
        }
        pending = []
        pendingRecords = 0
        pendingFirstLSN = .zero
        let all = waiters
        waiters = []
        return all
    }

    // MARK: Invariants

    /// E1, E2, E6. O(1) except the full order check of the waiters, which runs in debug builds
    /// (the tests) only: waiters can number in the hundreds of thousands under load.
    func checkInvariants() {
        // E1
        precondition(durableLSN <= lastLSN && durableEpoch <= lastEpoch,
                     "E1: durable \(durableLSN)/\(durableEpoch) past last \(lastLSN)/\(lastEpoch)")
        precondition(pending.isEmpty == (pendingRecords == 0), "pending bytes and record count disagree")
        var inFlightEnd = durableLSN
        if case .flushing(let first, let last, _, let records) = slot {
            precondition(first == durableLSN.next && last.rawValue - first.rawValue + 1 == records,
                         "E1: batch \(first)...\(last) (\(records) records) does not follow durable \(durableLSN)")
            inFlightEnd = last
        }
        if failure == nil {
            if pendingRecords > 0 {
                precondition(pendingFirstLSN == inFlightEnd.next, "E1: pending starts at \(pendingFirstLSN), not after \(inFlightEnd)")
            }
            precondition(lastLSN.rawValue == inFlightEnd.rawValue + pendingRecords,
                         "E1: last \(lastLSN) is not \(inFlightEnd) + \(pendingRecords) pending")
        }
        if slot == .reseeding {
            precondition(pending.isEmpty && lastLSN == durableLSN, "E8: records while re-seeding")
        }
        // E2
        if let failure {
            precondition(pending.isEmpty && waiters.isEmpty && slot == .idle,
                         "E2: after the failure (\(failure)): \(pendingRecords) pending, \(waiters.count) waiters, slot \(slot)")
            precondition(durableLSN == durableAtFailure, "E2: durable moved after the failure")
        }
        // E6
        if let first = waiters.first, let last = waiters.last {
            precondition(first.lsn > durableLSN && last.lsn <= lastLSN,
                         "E6: waiters \(first.lsn)...\(last.lsn) outside (\(durableLSN), \(lastLSN)]")
        }
        #if DEBUG
            precondition(zip(waiters, waiters.dropFirst()).allSatisfy { $0.lsn <= $1.lsn }, "E6: waiters out of LSN order")
        #endif
    }
}
