// ReplicaAppender.swift — the replica's path from received records to its WAL: in arrival
// order, without waiting for a disk between batches, acknowledged once per flush.
//
// Design notes.
//
// Why: the replica's engine group-commits like the primary's (storage E6): records handed to it
// while a flush (write + fsync) runs join the next flush. A path that waited for each batch's own
// fsync before handing over the next gave the replica one fsync per received batch; in sync mode
// every commit on the primary waits for that.
//
// Operations, submitted from the session's event loop in session order:
//   append(records)       `StorageEngine.appendReplicated`: when it returns, the records are in
//                         the engine's pending buffer with their own LSNs (or refused); its
//                         completion runs after the flush that made them durable.
//   persistAuthority(...) `StorageEngine.updateAuthority`: when it returns, the authority file
//                         is written, synced, renamed into place and its directory synced.
// Both run on one serial queue (`queue`), one at a time, in submission order. Nothing here runs
// on the event loop.
//
// Invariants
// 1. No reordering: batches reach the engine in the order they were received (one serial
//    queue; the engine assigns no LSN to a replicated record and refuses one that is not the
//    next, storage E4).
// 2. An authority change is durable before any later append is handed to the engine: it runs
//    synchronously on the queue and every later operation waits behind it. Appends handed over
//    before it may still be pending when it is written; a crash then leaves the authority ahead
//    of the WAL, which recovery accepts (the reverse, a WAL epoch above the authority's, is the
//    case recovery refuses, and this order makes it impossible).
// 3. Acknowledged per flush: the flusher resumes the completions a flush covers one after the
//    other, in LSN order; the first reads the engine's durable LSN after that flush (which
//    covers all of them) and reports it, the others find nothing new and report nothing. So
//    `onDurable` is called once per flush, with strictly increasing LSNs, each durable and
//    applied (storage E1: applied == durable), never above what was handed over.
// 4. The queue never waits for a WAL fsync: only for the engine's back-pressure (its pending
//    buffer bound) and for authority writes. What waits in it is bounded by the primary's
//    in-flight window (PrimaryReplicaSession invariant 4: at most `inFlightLSNMax` LSNs sent
//    and not acknowledged durable), so a slow disk stalls the stream, not memory.
// 5. After a failure (a refused record, a failed WAL, a refused authority change) nothing more
//    is handed to the engine and `onFailure` is called once.
// 6. `work` is entered for every operation until the queue has handed it to the engine, so
//    the next session can wait for this one's operations (and then for the engine's last LSN
//    to be durable) before it reads the position it starts from.
//
// Transitions: `append` and `persistAuthority` (submit), `flushed` (a completion: report),
// `fail` (failed; once).

import AeroCore
import AeroStorage
import Dispatch
import NIOConcurrencyHelpers

final class ReplicaAppender: Sendable {
    private let engine: StorageEngine
    /// Serial: operations reach the engine one at a time, in submission order (invariants 1, 2).
    private let queue = DispatchQueue(label: "aerodb.replica.append")
    private let work: DispatchGroup
    private let onDurable: @Sendable (LSN) -> Void
    private let onFailure: @Sendable (String) -> Void
    /// The last LSN reported to `onDurable`, and whether the appender failed.
    private let state: NIOLockedValueBox<(reported: LSN, failed: Bool)>

    /// `onDurable` and `onFailure` are called on storage threads and must not block.
    init(engine: StorageEngine, work: DispatchGroup, onDurable: @escaping @Sendable (LSN) -> Void,
         onFailure: @escaping @Sendable (String) -> Void) {
        self.engine = engine
        self.work = work
        self.onDurable = onDurable
        self.onFailure = onFailure
        self.state = NIOLockedValueBox((engine.durableLSN, false))
    }

    /// Hands `records` (consecutive, continuing the last batch) to the engine.
    func append(_ records: [WALRecord]) {
        submit { [self] in
            engine.appendReplicated(records) { [self] result in
                switch result {
                case .success: flushed()
                case .failure(let error): fail("replicated append refused: \(error)")
                }
            }
        }
    }

    /// Makes `change` durable, then calls `then` (before any later operation runs).
    func persistAuthority(_ change: @escaping @Sendable (Authority) -> Authority, describe: String, then: @escaping @Sendable () -> Void) {
        submit { [self] in
            do {
                try engine.updateAuthority(change)
            } catch {
                fail("\(describe) refused: \(error)")
                return
            }
            then()
        }
    }

    private func submit(_ operation: @escaping @Sendable () -> Void) {
        work.enter()
        queue.async { [self] in
            defer { work.leave() }
            guard !state.withLockedValue({ $0.failed }) else { return }
            operation()
        }
    }

    /// A completion of an append: report the durable LSN if this flush has not been reported
    /// yet (invariant 3). Reported under the lock, so reports cannot overtake each other.
    private func flushed() {
        let durable = engine.durableLSN
        state.withLockedValue { s in
            guard durable > s.reported, !s.failed else { return }
            s.reported = durable
            onDurable(durable)
        }
    }

    /// Stops handing anything to the engine and reports `message` (only the first failure).
    func fail(_ message: String) {
        let first = state.withLockedValue { s -> Bool in
            defer { s.failed = true }
            return !s.failed
        }
        if first { onFailure(message) }
    }
}
