// Recovery.swift — opening a data directory: from the files on disk to the state an engine
// starts from. Runs once, before the engine exists, with the directory lock held.
//
// Steps, in order (`Recovery.recover`):
//   1. An interrupted re-seed is finished or discarded first (`ReseedInstall.finishPending`,
//      RS1), by every opener, else the old state (or, in a fresh directory, a default
//      authority) would open beside the committed new one (storage E8).
//   2. `*.tmp` files (an interrupted `StorageIO.replaceDurably`) are removed
//      and the directory synced.
//   3. The authority file is read; a directory holding WAL or checkpoints without one is
//      refused; a fresh directory gets `StorageOptions.initialAuthority`, written durably.
//   4. The newest valid checkpoint is loaded and the WAL after it replayed (`WALScanner.scan`,
//      R1–R5); damage before the tail throws `StorageError.damaged`.
//   R6 The WAL never holds an epoch the authority file has not accepted
//      (`storage.recovery.authority-behind-wal`).
//   5. A torn tail is truncated (or its segment removed) and synced; reported in the result.
//   6. The last segment stays the active one only if it ends exactly where the state does.
// Recovery is idempotent: it changes only a tail no valid record follows, so recovering again
// gives the same state and reports nothing new.

import AeroCore
import Foundation

/// What recovery found: the state the engine starts from.
struct RecoveredState {
    var store: VersionStore
    var authority: Authority
    var lastLSN: LSN
    var lastEpoch: Epoch
    var checkpointLSN: LSN
    var segments: [(name: String, firstLSN: LSN)]
    var walBytesSinceCheckpoint: UInt64
    /// The segment to keep appending to, with its valid and allocated sizes.
    var active: (file: any StorageFile, validBytes: UInt64, allocatedBytes: UInt64)?
    var counters: StorageCounters
    var report: RecoveryReport
}

enum Recovery {
    /// Recovers `directory` (created and locked by the caller); `startedNs` is when the open
    /// began (the duration reported covers it). Throws `StorageIOError` for I/O errors.
    static func recover(directory: String, options: StorageOptions, io: any StorageIO, startedNs: UInt64) throws -> RecoveredState {
        try ReseedInstall.finishPending(directory: directory, io: io)
        let names = try io.list(directory)
        let temporary = names.filter { $0.hasSuffix(".tmp") }.sorted()
        for name in temporary { try io.remove(directory + "/" + name) }
        if !temporary.isEmpty { try io.syncDirectory(directory) }

        let authority: Authority
        if let existing = try AuthorityFile.read(directory: directory, io: io) {
            authority = existing
        } else {
            let hasData = names.contains { WALFormat.segmentFirstLSN($0) != nil || CheckpointFormat.lsn(ofFileName: $0) != nil }
            if hasData {
                throw StorageError.authority("\(directory)/\(AuthorityFile.name) is missing but the directory holds WAL or checkpoint files")
            }
            if let problem = options.initialAuthority.wellFormedProblem() { throw StorageError.authority(problem) }
            try AuthorityFile.write(options.initialAuthority, directory: directory, io: io)
            authority = options.initialAuthority
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
        if report.lastEpoch > authority.epoch.rawValue {  // R6
            throw StorageError.damaged(WALDamage(
                kind: .authorityBehindWAL, segment: report.segments.last?.name ?? AuthorityFile.name, offset: 0,
                lsn: LSN(report.lastLSN),
                detail: "the WAL holds epoch \(report.lastEpoch) but \(AuthorityFile.name) is at epoch \(authority.epoch)"))
        }
        _ = store.sweep(oldestNeeded: LSN(report.lastLSN))
        var counters = StorageCounters()
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

        let lastLSN = LSN(report.lastLSN)
        let checkpointLSN = LSN(report.checkpoint?.lsn ?? 0)
        var active: (file: any StorageFile, validBytes: UInt64, allocatedBytes: UInt64)?
        if let last = report.segments.last, !last.beforeCheckpoint,
           (last.lastLSN ?? (last.firstLSN - 1)) == lastLSN.rawValue {
            let file = try io.open(directory + "/" + last.name, create: false)
            active = (file, last.validBytes, try file.size())
        }

        let duration = DispatchTime.now().uptimeNanoseconds - startedNs
        counters.recoveryDurationNs = duration
        counters.recoveryRecords = UInt64(report.recordsAfterCheckpoint)
        counters.recoveryBytes = report.bytesAfterCheckpoint
        counters.keys = UInt64(store.keyCount)
        let recoveryReport = RecoveryReport(
            checkpointLSN: checkpointLSN.rawValue, recordsReplayed: report.recordsAfterCheckpoint,
            bytesReplayed: report.bytesAfterCheckpoint, segments: report.segments.count, tornTail: report.tornTail,
            removedTemporaryFiles: temporary, lastLSN: report.lastLSN, lastEpoch: report.lastEpoch, durationNs: duration)
        return RecoveredState(
            store: store, authority: authority, lastLSN: lastLSN, lastEpoch: Epoch(report.lastEpoch),
            checkpointLSN: checkpointLSN, segments: report.segments.map { ($0.name, LSN($0.firstLSN)) },
            walBytesSinceCheckpoint: report.bytesAfterCheckpoint, active: active, counters: counters, report: recoveryReport)
    }
}
