// WALFormat.swift — the on-disk format of WAL segments and records, and the transaction payload.
//
// Segment file `wal-<firstLSN, 20 digits>.log`:
//
//   header (128 bytes, fixed)
//     0  magic "AEROWAL1"                8 bytes
//     8  format version (UInt32 LE)      = WALFormat.version
//     12 first LSN (UInt64 LE)           LSN of the segment's first record
//     20 node id length (UInt16 LE)      ≤ nodeIDBytesMax
//     22 node id (UTF-8, zero padded)    nodeIDBytesMax bytes
//     124 CRC32C of bytes 0..<124 (UInt32 LE)
//   records, back to back, never split across segments:
//     0  payload length (UInt32 LE)      ≤ recordPayloadBytesMax
//     4  CRC32C (UInt32 LE)              over bytes 0..<4 and 8..<25+length (all but itself)
//     8  kind (UInt8)                    RecordKind
//     9  epoch (UInt64 LE)
//     17 LSN (UInt64 LE)
//     25 payload
//
// Invariants (docs/invariants.md, "Storage"):
//   S1 Record LSNs are dense and strictly increasing across all segments; a segment's first
//      record has the LSN its header and file name state.
//   S2 Record epochs never decrease along the log.
//   S3 A record is acknowledged only after the bytes that hold it were synced (`sync()` returned).
// The checks that enforce S1/S2 on read are in WALScanner; on write in StorageEngine.

import AeroCore

public enum WALFormat {
    public static let version: UInt32 = 1
    static let segmentMagic: [UInt8] = Array("AEROWAL1".utf8)
    static let segmentHeaderBytes = 128
    static let nodeIDBytesMax = 102
    static let recordHeaderBytes = 25
    /// A transaction may carry a few values of up to `valueBytesMax`; anything larger in a length
    /// field is corruption, not a record.
    public static let recordPayloadBytesMax = 64 << 20
    public static let keyBytesMax = 1024
    public static let valueBytesMax = 16 << 20
    /// Operations in one transaction, bounded so a payload cannot claim absurd counts.
    public static let transactionOpsMax = 10_000

    static func segmentName(firstLSN: LSN) -> String {
        let digits = String(firstLSN.rawValue)
        return "wal-" + String(repeating: "0", count: 20 - digits.count) + digits + ".log"
    }

    /// The first LSN named by a segment file name, or nil if `name` is not a segment.
    static func segmentFirstLSN(_ name: String) -> LSN? {
        guard name.hasPrefix("wal-"), name.hasSuffix(".log"), name.count == 28 else { return nil }
        return UInt64(name.dropFirst(4).prefix(20)).map { LSN($0) }
    }

    static func encodeSegmentHeader(firstLSN: LSN, nodeID: NodeID) -> [UInt8] {
        let id = Array(nodeID.rawValue.utf8)
        precondition(id.count <= nodeIDBytesMax, "node id longer than \(nodeIDBytesMax) bytes")
        var out = segmentMagic
        out.reserveCapacity(segmentHeaderBytes)
        out.appendLE(version)
        out.appendLE(firstLSN.rawValue)
        out.appendLE(UInt16(id.count))
        out += id
        out += [UInt8](repeating: 0, count: nodeIDBytesMax - id.count)
        out.appendLE(CRC32C.checksum(out))
        precondition(out.count == segmentHeaderBytes)
        return out
    }

    struct SegmentHeader: Equatable {
        var version: UInt32
        var firstLSN: LSN
        var nodeID: NodeID
    }

    enum HeaderProblem: Equatable { case short, badMagic, badChecksum, unsupportedVersion(UInt32) }

    static func decodeSegmentHeader(_ bytes: ArraySlice<UInt8>) -> Result<SegmentHeader, HeaderFailure> {
        guard bytes.count >= segmentHeaderBytes else { return .failure(HeaderFailure(problem: .short)) }
        let b = bytes.prefix(segmentHeaderBytes)
        let s = b.startIndex
        guard Array(b[s..<s + 8]) == segmentMagic else { return .failure(HeaderFailure(problem: .badMagic)) }
        guard CRC32C.checksum(b[s..<s + 124]) == b.loadLE(UInt32.self, at: s + 124) else {
            return .failure(HeaderFailure(problem: .badChecksum))
        }
        let version = b.loadLE(UInt32.self, at: s + 8)
        guard version == WALFormat.version else { return .failure(HeaderFailure(problem: .unsupportedVersion(version))) }
        let idCount = Int(b.loadLE(UInt16.self, at: s + 20))
        guard idCount <= nodeIDBytesMax else { return .failure(HeaderFailure(problem: .badChecksum)) }
        let id = String(decoding: b[s + 22..<s + 22 + idCount], as: UTF8.self)
        return .success(SegmentHeader(version: version, firstLSN: LSN(b.loadLE(UInt64.self, at: s + 12)), nodeID: NodeID(id)))
    }

    struct HeaderFailure: Error, Equatable { var problem: HeaderProblem }
}

/// What a WAL record carries.
public enum RecordKind: UInt8, Sendable, Codable {
    /// A committed transaction: a batch of puts and deletes applied atomically.
    case transaction = 1
    /// Marks the first LSN of a new epoch (written by a newly promoted primary); no data.
    case epochStart = 2
}

/// One WAL record as the engine appends it, streams it to replicas and replays it.
public struct WALRecord: Sendable, Hashable {
    public var kind: RecordKind
    public var epoch: Epoch
    public var lsn: LSN
    public var payload: [UInt8]

    public init(kind: RecordKind, epoch: Epoch, lsn: LSN, payload: [UInt8]) {
        self.kind = kind
        self.epoch = epoch
        self.lsn = lsn
        self.payload = payload
    }

    /// Bytes this record occupies in a segment.
    public var encodedBytes: Int { WALFormat.recordHeaderBytes + payload.count }

    /// Appends the framed record to `out` (header, CRC, payload).
    public func encode(into out: inout [UInt8]) {
        precondition(payload.count <= WALFormat.recordPayloadBytesMax, "record payload too large")
        let start = out.count
        out.appendLE(UInt32(payload.count))
        out.appendLE(UInt32(0))
        out.append(kind.rawValue)
        out.appendLE(epoch.rawValue)
        out.appendLE(lsn.rawValue)
        out += payload
        let crc = out.withUnsafeBytes { raw -> UInt32 in
            let c = CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[start..<start + 4]))
            return CRC32C.update(c, UnsafeRawBufferPointer(rebasing: raw[(start + 8)...]))
        }
        out.storeLE(crc, at: start + 4)
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encodedBytes)
        encode(into: &out)
        return out
    }

    enum DecodeFailure: Equatable {
        /// Fewer bytes than the frame claims (a torn write at the end of the file).
        case truncated
        case lengthTooLarge(UInt32)
        case checksumMismatch
        case unknownKind(UInt8)
    }

    /// A verified record in place: header fields and the payload's bytes, not copied.
    struct Frame {
        var kind: RecordKind
        var epoch: Epoch
        var lsn: LSN
        var payload: UnsafeRawBufferPointer
        var size: Int
    }

    /// Verifies the record starting at `offset` (length bound, CRC, kind) without copying it.
    static func decodeFrame(_ raw: UnsafeRawBufferPointer, at offset: Int) -> Result<Frame, DecodeFailureBox> {
        let available = raw.count - offset
        guard available >= WALFormat.recordHeaderBytes else { return .failure(DecodeFailureBox(.truncated)) }
        let base = raw.baseAddress! + offset
        let length = UInt32(littleEndian: base.loadUnaligned(as: UInt32.self))
        guard length <= UInt32(WALFormat.recordPayloadBytesMax) else { return .failure(DecodeFailureBox(.lengthTooLarge(length))) }
        let total = WALFormat.recordHeaderBytes + Int(length)
        guard available >= total else { return .failure(DecodeFailureBox(.truncated)) }
        let stored = UInt32(littleEndian: (base + 4).loadUnaligned(as: UInt32.self))
        var crc = CRC32C.update(0, UnsafeRawBufferPointer(start: base, count: 4))
        crc = CRC32C.update(crc, UnsafeRawBufferPointer(start: base + 8, count: total - 8))
        guard crc == stored else { return .failure(DecodeFailureBox(.checksumMismatch)) }
        let kindByte = (base + 8).load(as: UInt8.self)
        guard let kind = RecordKind(rawValue: kindByte) else { return .failure(DecodeFailureBox(.unknownKind(kindByte))) }
        let epoch = UInt64(littleEndian: (base + 9).loadUnaligned(as: UInt64.self))
        let lsn = UInt64(littleEndian: (base + 17).loadUnaligned(as: UInt64.self))
        return .success(Frame(kind: kind, epoch: Epoch(epoch), lsn: LSN(lsn),
                              payload: UnsafeRawBufferPointer(start: base + WALFormat.recordHeaderBytes, count: Int(length)), size: total))
    }

    /// Decodes the record starting at `offset` in `bytes`. On success also returns its size.
    static func decode(_ raw: UnsafeRawBufferPointer, at offset: Int) -> Result<(WALRecord, Int), DecodeFailureBox> {
        decodeFrame(raw, at: offset).map { f in
            (WALRecord(kind: f.kind, epoch: f.epoch, lsn: f.lsn, payload: [UInt8](f.payload)), f.size)
        }
    }

    struct DecodeFailureBox: Error { var failure: DecodeFailure; init(_ f: DecodeFailure) { failure = f } }
}

/// One operation of a transaction.
public enum Mutation: Sendable, Hashable {
    case put(key: String, value: [UInt8])
    case delete(key: String)

    public var key: String {
        switch self {
        case .put(let key, _), .delete(let key): return key
        }
    }
}

/// Transaction payload: count (UInt32), then per op: tag (1 put, 2 delete), key length (UInt16),
/// key, and for puts value length (UInt32) and value.
enum TransactionCodec {
    static func encode(_ mutations: [Mutation]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE(UInt32(mutations.count))
        for m in mutations {
            switch m {
            case .put(let key, let value):
                out.append(1)
                let k = Array(key.utf8)
                out.appendLE(UInt16(k.count))
                out += k
                out.appendLE(UInt32(value.count))
                out += value
            case .delete(let key):
                out.append(2)
                let k = Array(key.utf8)
                out.appendLE(UInt16(k.count))
                out += k
            }
        }
        return out
    }

    /// Decodes a payload whose CRC already matched; a malformed payload is reported, not trapped.
    static func decode(_ payload: [UInt8]) -> [Mutation]? {
        var result: [Mutation] = []
        let ok = payload.withUnsafeBytes { raw in
            forEach(raw) { key, value in result.append(value.map { .put(key: key, value: [UInt8]($0)) } ?? .delete(key: key)) }
        }
        return ok ? result : nil
    }

    /// Calls `body` with each operation's key and value (nil for a delete) straight from the
    /// payload bytes; returns false if the payload is malformed (operations before the fault
    /// were already passed to `body`).
    static func forEach(_ raw: UnsafeRawBufferPointer, _ body: (String, UnsafeRawBufferPointer?) -> Void) -> Bool {
        let n = raw.count
        func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        guard n >= 4 else { return false }
        let count = u32(0)
        var i = 4
        guard count <= WALFormat.transactionOpsMax else { return false }
        for _ in 0..<count {
            guard n - i >= 3 else { return false }
            let tag = raw[i]
            let keyLength = u16(i + 1)
            i += 3
            guard n - i >= keyLength else { return false }
            let key = String(decoding: UnsafeRawBufferPointer(rebasing: raw[i..<i + keyLength]), as: UTF8.self)
            i += keyLength
            switch tag {
            case 1:
                guard n - i >= 4 else { return false }
                let valueLength = u32(i)
                i += 4
                guard n - i >= valueLength else { return false }
                body(key, UnsafeRawBufferPointer(rebasing: raw[i..<i + valueLength]))
                i += valueLength
            case 2:
                body(key, nil)
            default:
                return false
            }
        }
        return i == n
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { src in
            for (i, b) in src.enumerated() { self[offset + i] = b }
        }
    }
}

extension ArraySlice where Element == UInt8 {
    func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        Swift.withUnsafeMutableBytes(of: &value) { dst in
            for i in 0..<MemoryLayout<T>.size { dst[i] = self[offset + i] }
        }
        return T(littleEndian: value)
    }
}
