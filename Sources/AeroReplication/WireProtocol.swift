// WireProtocol.swift — the frame layout and limits of the peer (replication) channel.
//
// Every message between two nodes travels in one frame:
//
//     offset  size  field
//     0       4     bodyBytes   u32 big-endian, bytes of `body` (>= 2, <= frameBodyBytesMax)
//     4       4     checksum    u32 big-endian, CRC32C (Castagnoli) of `body`
//     8       n     body        version u8 | message type u8 | message fields
//
// Design notes
// - The length is checked against `frameBodyBytesMax` *before* any byte of the body is buffered,
//   so a peer cannot make us allocate more than one bounded frame.
// - The checksum covers the version and type too: a flipped type byte is a checksum error, not a
//   different message. The CRC is AeroCore's CRC32C, the one the WAL uses, so the project has
//   one checksum implementation.
// - Integers are big-endian and of fixed width. Strings are u16 length + UTF-8; byte strings
//   (record payloads) are u32 length + bytes. Every length is bounded by a named constant below
//   and checked on decode; a frame must be consumed exactly (trailing bytes are an error).
// - A frame of an unknown version is refused as a whole: there is exactly one version today and
//   peers of different versions must not guess at each other's fields.
//
// Invariants
// 1. No frame body larger than `frameBodyBytesMax` is ever buffered, sent or accepted.
// 2. A decoded message is exactly what the sender encoded (checksum verified, every field
//    read, no trailing bytes), or decoding fails with a typed `WireError`.
// 3. A connection whose input fails to decode is closed (see `PeerChannel.swift`); nothing after
//    a bad frame is interpreted.

import AeroCore

/// Limits and constants of the peer wire protocol.
public enum WireProtocol {
    /// The only protocol version this build speaks. 2: hello's history entries carry the
    /// epoch's durability (quorum and acknowledging set).
    public static let version: UInt8 = 2

    /// Members in one epoch's acknowledging set on the wire (a u8 count).
    public static let durabilitySetMax = 255

    /// Bytes before the body: length (4) and checksum (4).
    public static let headerBytes = 8

    /// Largest accepted frame body. A Records batch is the largest message; its payload budget
    /// `recordsBatchBytesMax` leaves room for per-record headers within this bound.
    public static let frameBodyBytesMax = 8 << 20

    /// Payload bytes a sender puts in one Records batch (sum of record payloads).
    public static let recordsBatchBytesMax = 4 << 20

    /// Records in one batch. With `recordHeaderBytes` each, the headers of a full batch take
    /// `recordsBatchCountMax * recordHeaderBytes` bytes.
    public static let recordsBatchCountMax = 4096

    /// Fixed bytes per record on the wire: lsn u64, epoch u64, kind u8, payload length u32.
    public static let recordHeaderBytes = 8 + 8 + 1 + 4

    /// Bytes of one record's payload (a WAL record is bounded by the storage engine well below).
    public static let recordPayloadBytesMax = recordsBatchBytesMax

    /// UTF-8 bytes of a node id on the wire.
    public static let nodeIDBytesMax = 64

    /// UTF-8 bytes of a free-text field (reasons, messages, rule ids).
    public static let textBytesMax = 4096

    /// Entries of an epoch history in a hello. One entry per promotion: thousands of
    /// promotions of one cluster are far beyond any real use, and a longer history is refused.
    public static let historyEntriesMax = 4096

    static func assertConstants() {
        // A full batch (headers + payloads) plus the batch header fits in one frame.
        precondition(
            recordsBatchBytesMax + recordsBatchCountMax * recordHeaderBytes + 64 <= frameBodyBytesMax,
            "a full Records batch must fit in one frame")
        precondition(historyEntriesMax * (8 + 2 + nodeIDBytesMax + 8) + 256 <= frameBodyBytesMax,
            "a full epoch history must fit in one hello frame")
        precondition(frameBodyBytesMax <= Int(UInt32.max), "frame length is a u32")
        precondition(textBytesMax <= Int(UInt16.max) && nodeIDBytesMax <= Int(UInt16.max),
            "string lengths are u16")
    }
}

/// Why bytes from a peer were not accepted as a message. Any of these closes the connection.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The length field announces more than `frameBodyBytesMax` bytes.
    case frameTooLarge(bodyBytes: Int, maxBytes: Int)
    /// The length field announces fewer bytes than version + type.
    case frameTooSmall(bodyBytes: Int)
    /// The CRC32C of the body does not match the header.
    case checksumMismatch(expected: UInt32, actual: UInt32)
    /// A version this build does not speak.
    case unsupportedVersion(UInt8)
    /// A message type byte with no message.
    case unknownMessageType(UInt8)
    /// The body ended before the named field of the named message was complete.
    case truncated(message: String, field: String)
    /// Bytes left in the body after the last field of the message.
    case trailingBytes(message: String, count: Int)
    /// A field decoded but breaks a rule of the protocol (length over its bound, bad UTF-8, ...).
    case invalidField(message: String, field: String, reason: String)
    /// The connection ended in the middle of a frame.
    case truncatedFrame(bufferedBytes: Int)

    public var description: String {
        switch self {
        case .frameTooLarge(let n, let max): return "frame of \(n) bytes exceeds the limit of \(max) bytes"
        case .frameTooSmall(let n): return "frame of \(n) bytes is smaller than its version and type"
        case .checksumMismatch(let e, let a):
            return "frame checksum mismatch: header says \(hex(e)), body has \(hex(a))"
        case .unsupportedVersion(let v): return "unsupported protocol version \(v) (this build speaks \(WireProtocol.version))"
        case .unknownMessageType(let t): return "unknown message type \(t)"
        case .truncated(let m, let f): return "\(m) message truncated in field \(f)"
        case .trailingBytes(let m, let n): return "\(n) unexpected bytes after the \(m) message"
        case .invalidField(let m, let f, let r): return "\(m).\(f): \(r)"
        case .truncatedFrame(let n): return "connection closed inside a frame (\(n) bytes buffered)"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
