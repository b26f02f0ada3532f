// StorageEngine+Authority.swift — replacing the authority file, fencing, and promotion.
//
// Invariants (docs/invariants.md, "Storage"; the file itself: Authority.swift, A1–A4):
//   A2/A3 `updateAuthority` refuses a successor that moves the epoch back or does not extend
//      the history (`Authority.successorProblem`), and an epoch below the WAL's last one (R6).
//      It does not wait for pending records: an epoch change is ordered against the log by
//      its callers (a replica's appender hands over no batch meanwhile; `promote` holds the
//      lock from the authority change to the epoch-start record).
//   A4 `promote` writes the authority file (role primary, the history entry starting at the
//      next LSN) durably before the epoch-start record, the first record of the new epoch, is
//      appended, both under one hold of the lock.
//   No authority change runs during a re-seed in place, which writes the authority file itself
//      (E8): `updateAuthority` waits for it.

import AeroCore
import Foundation

extension StorageEngine {
    /// Replaces the authority file atomically after checking A2/A3 (`Authority.successorProblem`)
    /// and that the epoch is not below the WAL's last one.
    @discardableResult
    public func updateAuthority(_ change: (Authority) throws -> Authority) throws -> Authority {
        condition.lock()
        defer { condition.unlock() }
        return try updateAuthorityLocked(change)
    }

    private func updateAuthorityLocked(_ change: (Authority) throws -> Authority) throws -> Authority {
        while commits.isReseeding && !closing { condition.wait() }  // E8: the re-seed writes the authority file
        if closing { throw StorageError.closed }
        let next = try change(authorityState)
        if let problem = authorityState.successorProblem(next) { throw StorageError.authority(problem) }
        if next.epoch < commits.lastEpoch {
            throw StorageError.authority("epoch \(next.epoch) is below the WAL's epoch \(commits.lastEpoch)")
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
            return commits.lastLSN
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
                    guard start == self.commits.lastLSN.next else { throw StorageError.authority("the log moved during promotion") }
                    return Authority(nodeID: current.nodeID, role: .primary, epoch: epoch, following: nil, history: current.history + [entry])
                }
                let record = WALRecord(kind: .epochStart, epoch: epoch, lsn: commits.lastLSN.next, payload: [])
                precondition(record.lsn == start, "a record overtook the promotion")
                appendLocked(record, mutations: [])
                commits.addWaiter(for: record.lsn) { continuation.resume(with: $0) }
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
}
