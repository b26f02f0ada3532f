// WALScanner.swift — reads a data directory's WAL and checkpoints without changing them.
//
// Used by recovery (which then acts on the result) and by `aerodb wal inspect|verify`.
// Decisions, in order (docs/storage.md, "Recovery"):
//   R1 The newest checkpoint that verifies is the base; a newer one that fails verification is
//      damage (it was renamed into place whole, so a failure is not a crash artefact).
//   R2 Segments wholly before the base are skipped; the first segment read must start at or
//      before base+1, else WAL after the checkpoint is missing (lsn-gap).
//   R3 Each record must decode, carry the next LSN (S1) and an epoch not lower than the one
//      before (S2), else:
//        - in the last segment, with no valid record anywhere after the failure: a torn tail,
//          reported as such; recovery truncates it;
//        - otherwise: damage naming segment, offset and LSN; the open stops.
//   R4 A last segment whose header itself is torn and holds no valid record is a torn tail
//      (recovery removes the file).
//   R5 Segments are preallocated with zeros (so an fdatasync after an append does not have to
//      journal a new file size); a segment whose remaining bytes are all zero ends cleanly there.
//      Records lost under zeros in an earlier segment show up as an LSN gap at the next one.
// Torn writes are assumed to persist a prefix of what was written. A device that persists
// later sectors of an unsynced write but not earlier ones can make an unacknowledged tail look
// like damage; the open then refuses (never drops data silently) and `aerodb wal verify`
// shows where.

import AeroCore

public struct SegmentSummary: Sendable, Codable, Equatable {
    public var name: String
    public var firstLSN: UInt64
    public var lastLSN: UInt64?
    public var records: Int
    public var bytes: UInt64
    /// End of the last valid record; zero-filled preallocated space may follow.
    public var validBytes: UInt64 = 0
    public var firstEpoch: UInt64?
    public var lastEpoch: UInt64?
    public var nodeID: String?
    /// Skipped because the checkpoint covers it wholly.
    public var beforeCheckpoint: Bool
}

public struct TornTail: Sendable, Codable, Equatable, CustomStringConvertible {
    public var segment: String
    /// The file is cut back to this size (or removed when `removeSegment`).
    public var offset: UInt64
    public var droppedBytes: UInt64
    public var removeSegment: Bool
    public var reason: String
    public var description: String {
        removeSegment
            ? "torn segment \(segment) (\(reason)); \(droppedBytes) bytes removed"
            : "torn tail in \(segment) at offset \(offset) (\(reason)); \(droppedBytes) bytes truncated"
    }
}

public struct CheckpointSummary: Sendable, Codable, Equatable {
    public var name: String
    public var lsn: UInt64
    public var epoch: UInt64
    public var entries: Int
    public var bytes: UInt64
}

public struct WALScanReport: Sendable, Codable {
    public var checkpoint: CheckpointSummary?
    public var segments: [SegmentSummary] = []
    public var tornTail: TornTail?
    public var damage: WALDamage?
    /// The last valid LSN in the WAL, or the checkpoint's if higher (the state's position).
    public var lastLSN: UInt64 = 0
    public var lastEpoch: UInt64 = 0
    public var recordsAfterCheckpoint: Int = 0
    public var bytesAfterCheckpoint: UInt64 = 0
    public var temporaryFiles: [String] = []
}

enum WALScanner {
    /// Scans `directory`. `checkpointImage` receives the base checkpoint's entries (when loading),
    /// `visit` every valid record after the base in order. Stops at the first damage.
    static func scan(
        directory: String, io: any StorageIO, loadCheckpoint: Bool,
        checkpointImage: (CheckpointFormat.Image) -> Void = { _ in },
        visit: (WALRecord.Frame, String, UInt64) -> WALDamage? = { _, _, _ in nil }
    ) throws -> WALScanReport {
        var report = WALScanReport()
        let names = try io.list(directory)
        report.temporaryFiles = names.filter { $0.hasSuffix(".tmp") }.sorted()

        // R1: the base checkpoint.
        var baseLSN = LSN.zero
        var baseEpoch = Epoch.zero
        let checkpoints = names.compactMap { n in CheckpointFormat.lsn(ofFileName: n).map { (n, $0) } }
            .sorted { $0.1 > $1.1 }
        if let (name, lsn) = checkpoints.first {
            let file = try io.open(directory + "/" + name, create: false)
            let bytes = try file.readAll()
            file.close()
            switch CheckpointFormat.decode(bytes) {
            case .failure(let f):
                report.damage = WALDamage(kind: .corruptCheckpoint, segment: name, offset: 0, lsn: lsn, detail: f.why)
                return report
            case .success(let image):
                guard image.lsn == lsn else {
                    report.damage = WALDamage(kind: .corruptCheckpoint, segment: name, offset: 0, lsn: lsn,
                                              detail: "file name says LSN \(lsn), contents say \(image.lsn)")
                    return report
                }
                baseLSN = lsn
                baseEpoch = image.epoch
                report.checkpoint = CheckpointSummary(name: name, lsn: lsn.rawValue, epoch: image.epoch.rawValue,
                                                      entries: image.entries.count, bytes: UInt64(bytes.count))
                if loadCheckpoint { checkpointImage(image) }
            }
        }
        report.lastLSN = baseLSN.rawValue
        report.lastEpoch = baseEpoch.rawValue

        // R2: which segments to read.
        let segments = names.compactMap { n in WALFormat.segmentFirstLSN(n).map { (n, $0) } }.sorted { $0.1 < $1.1 }
        var start = 0
        if let i = segments.lastIndex(where: { $0.1 <= baseLSN.next }) { start = i }
        for (name, first) in segments[..<start] {
            report.segments.append(SegmentSummary(name: name, firstLSN: first.rawValue, lastLSN: nil, records: 0, bytes: 0,
                                                  firstEpoch: nil, lastEpoch: nil, nodeID: nil, beforeCheckpoint: true))
        }
        guard start < segments.count else { return report }
        if segments[start].1 > baseLSN.next {
            report.damage = WALDamage(kind: .lsnGap, segment: segments[start].0, offset: 0, lsn: baseLSN.next,
                                      detail: "WAL after \(baseLSN == .zero ? "the start" : "checkpoint \(baseLSN)") is missing: the first segment starts at LSN \(segments[start].1)")
            return report
        }
        // LSNs start at 1: a file named for LSN 0 is damage (and would underflow below).
        guard segments[start].1 > .zero else {
            report.damage = WALDamage(kind: .lsnGap, segment: segments[start].0, offset: 0, lsn: baseLSN.next,
                                      detail: "the segment's file name gives first LSN 0; LSNs start at 1")
            return report
        }

        var previousLSN = LSN(segments[start].1.rawValue - 1)
        var previousEpoch = Epoch.zero
        for index in start..<segments.count {
            let (name, nameLSN) = segments[index]
            let isLast = index == segments.count - 1
            let file = try io.open(directory + "/" + name, create: false)
            let bytes = try file.readAll()
            file.close()
            var summary = SegmentSummary(name: name, firstLSN: nameLSN.rawValue, lastLSN: nil, records: 0,
                                         bytes: UInt64(bytes.count), firstEpoch: nil, lastEpoch: nil, nodeID: nil,
                                         beforeCheckpoint: false)
            defer { report.segments.append(summary) }

            switch WALFormat.decodeSegmentHeader(bytes[...]) {
            case .failure(let f):
                let follows = bytes.withUnsafeBytes { validRecordExists(in: $0, from: 0, after: previousLSN) }
                if isLast && !follows {
                    report.tornTail = TornTail(segment: name, offset: 0, droppedBytes: UInt64(bytes.count),
                                               removeSegment: true, reason: "segment header \(f.problem)")
                    return report
                }
                report.damage = WALDamage(kind: .badSegmentHeader, segment: name, offset: 0, lsn: previousLSN.next,
                                          detail: "segment header: \(f.problem)")
                return report
            case .success(let header):
                summary.nodeID = header.nodeID.rawValue
                guard header.firstLSN == nameLSN, nameLSN == previousLSN.next else {
                    report.damage = WALDamage(kind: .lsnGap, segment: name, offset: 0, lsn: previousLSN.next,
                                              detail: "segment starts at LSN \(header.firstLSN) (file name \(nameLSN)); expected \(previousLSN.next)")
                    return report
                }
            }

            let stop: Bool = bytes.withUnsafeBytes { raw -> Bool in
                var offset = WALFormat.segmentHeaderBytes
                summary.validBytes = UInt64(offset)
                while offset < raw.count {
                    switch WALRecord.decodeFrame(raw, at: offset) {
                    case .failure(let box):
                        if Self.allZero(raw, from: offset) { return false }
                        if isLast && !validRecordExists(in: raw, from: offset + 1, after: previousLSN) {
                            report.tornTail = TornTail(segment: name, offset: UInt64(offset),
                                                       droppedBytes: UInt64(raw.count - offset), removeSegment: false,
                                                       reason: "\(box.failure)")
                        } else {
                            report.damage = WALDamage(kind: .corruptRecord, segment: name, offset: UInt64(offset),
                                                      lsn: previousLSN.next,
                                                      detail: "record fails verification (\(box.failure)) and valid records follow")
                        }
                        return true
                    case .success(let record):
                        let size = record.size
                        guard record.lsn == previousLSN.next else {
                            report.damage = WALDamage(kind: .lsnGap, segment: name, offset: UInt64(offset), lsn: record.lsn,
                                                      detail: "record has LSN \(record.lsn); expected \(previousLSN.next)")
                            return true
                        }
                        let floor = record.lsn > baseLSN ? max(previousEpoch, baseEpoch) : previousEpoch
                        guard record.epoch >= floor else {
                            report.damage = WALDamage(kind: .epochBackwards, segment: name, offset: UInt64(offset), lsn: record.lsn,
                                                      detail: "record epoch \(record.epoch) is lower than \(floor) before it")
                            return true
                        }
                        if record.lsn > baseLSN {
                            if let d = visit(record, name, UInt64(offset)) {
                                report.damage = d
                                return true
                            }
                            report.recordsAfterCheckpoint += 1
                            report.bytesAfterCheckpoint += UInt64(size)
                        }
                        previousLSN = record.lsn
                        previousEpoch = record.epoch
                        if summary.firstEpoch == nil { summary.firstEpoch = record.epoch.rawValue }
                        summary.lastEpoch = record.epoch.rawValue
                        summary.lastLSN = record.lsn.rawValue
                        summary.records += 1
                        offset += size
                        summary.validBytes = UInt64(offset)
                    }
                }
                return false
            }
            if previousLSN.rawValue > report.lastLSN { report.lastLSN = previousLSN.rawValue }
            if previousEpoch.rawValue > report.lastEpoch { report.lastEpoch = previousEpoch.rawValue }
            if stop { return report }
        }
        return report
    }

    static func allZero(_ raw: UnsafeRawBufferPointer, from: Int) -> Bool {
        var i = from
        while i + 8 <= raw.count {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < raw.count {
            if raw[i] != 0 { return false }
            i += 1
        }
        return true
    }

    /// Bounds the LSN a stray frame may claim so random bytes are cheaply rejected before a CRC.
    static let strayLSNWindow: UInt64 = 1 << 32

    /// Whether any byte offset at or after `from` starts a record that verifies and continues
    /// the log (LSN after `after`). Used only on the failure path.
    static func validRecordExists(in raw: UnsafeRawBufferPointer, from: Int, after: LSN) -> Bool {
        guard raw.count >= WALFormat.recordHeaderBytes else { return false }
        var offset = max(from, 0)
        while offset + WALFormat.recordHeaderBytes <= raw.count {
            let base = raw.baseAddress! + offset
            let kind = (base + 8).load(as: UInt8.self)
            let lsn = UInt64(littleEndian: (base + 17).loadUnaligned(as: UInt64.self))
            if RecordKind(rawValue: kind) != nil, lsn > after.rawValue, lsn - after.rawValue <= strayLSNWindow,
               case .success = WALRecord.decodeFrame(raw, at: offset) {
                return true
            }
            offset += 1
        }
        return false
    }
}
