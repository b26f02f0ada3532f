// StorageEngine+Checkpoints.swift — checkpoints (an image of the store at one LSN), the
// removal of the WAL they cover, and the images and chunks a re-seeding peer is sent.
//
// Invariants (docs/invariants.md, "Storage"):
//   E5 A checkpoint at LSN c is durable (written with `StorageIO.replaceDurably`: temp file
//      synced, renamed, directory synced) before any WAL segment wholly at or below c is
//      removed; the active (last) segment is never removed. (`checkpointBlocking`,
//      `removeCoveredFiles`)
//   E3 Removals are followed by a directory sync. (`removeCoveredFiles`)
//   One checkpoint runs at a time (`checkpointRunning`), never beside a re-seed in place.
//   Writers are not blocked: keys are read in chunks under the lock, at a snapshot.

import AeroCore
import Foundation

extension StorageEngine {
    /// Takes a checkpoint at the current durable LSN (E5) and removes WAL segments and older
    /// checkpoints it covers. Returns its LSN. Runs its I/O on a separate thread.
    public func checkpoint() async throws -> LSN {
        try await runOnThread { try self.checkpointBlocking() }
    }

    /// Keys read under the lock per hold, so writers wait at most this long for a checkpoint.
    static let checkpointKeysPerLockHold = 4096

    public func checkpointBlocking() throws -> LSN {
        // The snapshot and its epoch are taken under one hold: a flush may advance both next.
        let (snapshot, epoch): (Snapshot, Epoch) = try locked {
            while (checkpointRunning || commits.isReseeding) && !closing { condition.wait() }
            if closing { throw StorageError.closed }
            if let failure = commits.failure { throw StorageError.walFailed(failure) }
            checkpointRunning = true
            return (snapshotLocked(), commits.durableEpoch)
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
            var i = 0
            while i < keys.count {
                let slice = keys[i..<min(i + Self.checkpointKeysPerLockHold, keys.count)]
                locked {
                    for key in slice { if let v = store.get(key, at: lsn) { entries.append((key, v)) } }
                }
                i += Self.checkpointKeysPerLockHold
            }
            let bytes = CheckpointFormat.encode(lsn: lsn, epoch: epoch, entries: entries)
            let name = CheckpointFormat.fileName(lsn: lsn)
            try io.replaceDurably(name, in: directory, with: bytes)  // E5: durable before any removal
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

    func startBackgroundCheckpoint() {
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

    /// Bounded read of the checkpoint at `lsn` for a re-seeding peer: at most `bytesMax` bytes
    /// from `offset`, and the file's size. Nil when that checkpoint no longer exists (a newer
    /// one replaced it: the peer starts over).
    public func checkpointChunk(lsn: LSN, offset: UInt64, bytesMax: Int) throws -> (bytes: [UInt8], totalBytes: UInt64)? {
        precondition(bytesMax > 0, "a chunk holds at least one byte")
        let path = directory + "/" + CheckpointFormat.fileName(lsn: lsn)
        let file: any StorageFile
        do { file = try io.open(path, create: false) } catch { return nil }
        defer { file.close() }
        do {
            let total = try file.size()
            guard offset <= total else { return ([], total) }
            let count = Int(min(UInt64(bytesMax), total - offset))
            return (try file.read(at: offset, count: count), total)
        } catch let error as StorageIOError {
            throw StorageError.io(error)
        }
    }
}
