// WALReader.swift — durable WAL records for streaming to a replica (`readWAL`).
//
// Rules:
//   - Only durable records are returned (up to durableLSN when the read began).
//   - A record's bytes are read only once its stated length is plausible: at most
//     `WALFormat.recordPayloadBytesMax` and within what the segment file holds after it. A
//     corrupt length is damage (`storage.recovery.corrupt-record`) before any buffer of that
//     size is allocated.
//   - A read continuing where an earlier one ended (the usual case: each streaming replica
//     asks for the records after the ones it was sent) resumes at the remembered segment and
//     offset instead of scanning from the segment start. One cursor per reader, at most
//     `readCursorsMax`: with a single shared cursor, two replicas reading the same records in
//     turn (the default 3-node cluster) each found the other's position and rescanned the
//     segment from its start on every read — two preads and a CRC per record, so the
//     primary's CPU per write grew with the segment (docs/benchmarks.md, "Cluster").
//   - A segment removed after a checkpoint answers `.walGone`: the reader must re-seed.

import AeroCore
import Foundation

extension StorageEngine {
    /// Read positions remembered at once: more than the replicas a primary streams to (at most
    /// 8 members in a local cluster), few enough that finding one is a short linear search.
    static let readCursorsMax = 16

    /// Durable records from `lsn` on, at most about `bytesMax` bytes (at least one record when
    /// one exists). `.walGone` when the segment holding `lsn` was removed after a checkpoint.
    public func readWAL(from lsn: LSN, bytesMax: Int = 1 << 20) throws -> WALReadResult {
        precondition(lsn > .zero, "LSNs start at 1")
        let (durableNow, list, cursor, ckpt) = locked {
            (commits.durableLSN, segments, readCursors.last(where: { $0.next == lsn }), checkpointLSN)
        }
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
                let length = UInt64(header[...].loadLE(UInt32.self, at: 0))
                let remaining = size - offset - UInt64(WALFormat.recordHeaderBytes)
                guard length <= UInt64(WALFormat.recordPayloadBytesMax) && length <= remaining else {
                    throw StorageError.damaged(WALDamage(kind: .corruptRecord, segment: name, offset: offset, lsn: next,
                                                         detail: "durable record states a length of \(length) bytes; "
                                                             + "at most \(min(UInt64(WALFormat.recordPayloadBytesMax), remaining)) can follow"))
                }
                let whole = try wrapIO { try file.read(at: offset, count: WALFormat.recordHeaderBytes + Int(length)) }
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
        locked {
            // Kept, not moved: another replica may still ask for `lsn` (two in step ask for the
            // same records in turn). One cursor per position; the oldest ages out.
            readCursors.removeAll { $0.next == next }
            readCursors.append((next, cursorSegment, offset))
            if readCursors.count > Self.readCursorsMax { readCursors.removeFirst(readCursors.count - Self.readCursorsMax) }
        }
        return .records(out)
    }
}
