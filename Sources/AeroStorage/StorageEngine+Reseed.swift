// StorageEngine+Reseed.swift — re-seeding a running replica in place from a checkpoint image.
//
// Invariants (docs/invariants.md, "Storage"):
//   E8 A re-seed in place (`reseedInPlace`) replaces a running replica's state by a checkpoint
//      image strictly ahead of its durable LSN, never behind it (no WAL is cut back here). It
//      holds the flush slot (`GroupCommit.beginReseed`) with nothing pending, so no record is
//      written meanwhile and it alone touches the active segment; checkpoints, writes and
//      authority changes wait for it. On disk it is `ReseedInstall.install` (RS1–RS4: all or
//      nothing, rolled forward at the next open if interrupted); a failure there fails the WAL
//      (`GroupCommit.failReseed`, E2). In memory the version store, positions
//      (`GroupCommit.finishReseed`), segment list and read cursor are replaced in one step
//      under the lock. Snapshots taken before keep reading the store they were taken from
//      (retired with its generation until the last of them is released, Snapshot.swift), so a
//      reader never sees a mix of old and new state.
//   Refusals (a primary, an authority that is not this replica's successor, anything pending,
//   an image not ahead) change nothing.

import AeroCore
import Foundation

extension StorageEngine {
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
        while (commits.slot != .idle || checkpointRunning) && !closing { condition.wait() }
        do {
            if closing { throw StorageError.closed }
            if let failure = commits.failure { throw StorageError.walFailed(failure) }
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
            guard commits.pendingBytes == 0 && commits.lastLSN == commits.durableLSN else {
                throw StorageError.authority("a re-seed in place needs nothing pending (records through \(commits.lastLSN) assigned, \(commits.durableLSN) durable)")
            }
            guard image.lsn > commits.durableLSN else {
                throw StorageError.authority("checkpoint image at LSN \(image.lsn) is not ahead of the durable LSN \(commits.durableLSN); "
                    + "re-seeding in place never cuts the WAL back")
            }
        } catch {
            condition.unlock()
            throw error
        }
        commits.beginReseed()  // the flush slot: no record is written, the active segment is ours
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
            condition.broadcast()
            condition.unlock()
        }
        if let installError {
            // E2: the directory may be half applied; nothing more is written or acknowledged.
            commits.failReseed("re-seed in place failed: \(installError)")
            throw installError
        }
        let live = snapshotCounts.values.reduce(0, +)
        if live > 0 { retiredStores[generation] = (store, live) }
        generation += 1
        snapshotCounts = [:]
        store = fresh
        authorityState = next
        commits.finishReseed(at: image.lsn, epoch: image.epoch)
        checkpointLSN = image.lsn
        segments = []
        readCursors = []
        walBytesSinceCheckpoint = 0
        activeBytes = 0
        activeAllocatedBytes = 0
        return facts
    }
}
