// WireCodec.swift — PeerMessage <-> frame bytes. Pure functions over ByteBuffer, no channel.
//
// Layout and limits: WireProtocol.swift. Encoding a message whose fields break a limit throws
// the same `WireError` a receiver would raise, so an oversized batch fails at the sender.

import AeroCore
import NIOCore

public enum WireCodec {
    /// Appends one complete frame (header + body) for `message` to `buffer`.
    public static func encodeFrame(_ message: PeerMessage, into buffer: inout ByteBuffer) throws(WireError) {
        let start = buffer.writerIndex
        buffer.writeInteger(UInt32(0))  // length, patched below
        buffer.writeInteger(UInt32(0))  // checksum, patched below
        let bodyStart = buffer.writerIndex
        buffer.writeInteger(WireProtocol.version)
        buffer.writeInteger(message.kind.rawValue)
        try encodeFields(message, into: &buffer)
        let bodyBytes = buffer.writerIndex - bodyStart
        guard bodyBytes <= WireProtocol.frameBodyBytesMax else {
            buffer.moveWriterIndex(to: start)
            throw .frameTooLarge(bodyBytes: bodyBytes, maxBytes: WireProtocol.frameBodyBytesMax)
        }
        let crc = buffer.withUnsafeReadableBytes { all in
            CRC32C.update(0, UnsafeRawBufferPointer(rebasing: all[(bodyStart - buffer.readerIndex)...]))
        }
        buffer.setInteger(UInt32(bodyBytes), at: start)
        buffer.setInteger(crc, at: start + 4)
    }

    /// One frame as a fresh buffer.
    public static func frame(_ message: PeerMessage, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(WireError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        try encodeFrame(message, into: &buffer)
        return buffer
    }

    /// Result of looking at the front of a receive buffer.
    public enum FrameScan: Equatable {
        /// Not enough bytes yet for the header or the announced body.
        case needMoreData
        /// A complete frame of this many bytes (header included) is at the reader index.
        case complete(frameBytes: Int)
    }

    /// Checks the header at the reader index without consuming anything. Throws as soon as the
    /// header announces an impossible length, before the body arrives (invariant 1).
    public static func scan(_ buffer: ByteBuffer) throws(WireError) -> FrameScan {
        guard let bodyBytes32 = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        let bodyBytes = Int(bodyBytes32)
        guard bodyBytes <= WireProtocol.frameBodyBytesMax else {
            throw .frameTooLarge(bodyBytes: bodyBytes, maxBytes: WireProtocol.frameBodyBytesMax)
        }
        guard bodyBytes >= 2 else { throw .frameTooSmall(bodyBytes: bodyBytes) }
        let frameBytes = WireProtocol.headerBytes + bodyBytes
        return buffer.readableBytes >= frameBytes ? .complete(frameBytes: frameBytes) : .needMoreData
    }

    /// Decodes the complete frame at the reader index of `buffer` (see `scan`) and consumes it.
    public static func decodeFrame(_ buffer: inout ByteBuffer) throws(WireError) -> PeerMessage {
        guard case .complete(let frameBytes) = try scan(buffer) else {
            preconditionFailure("decodeFrame called without a complete frame")
        }
        var frame = buffer.readSlice(length: frameBytes)!
        let _ = frame.readInteger(as: UInt32.self)!
        let expected = frame.readInteger(as: UInt32.self)!
        let actual = frame.withUnsafeReadableBytes { CRC32C.update(0, $0) }
        guard expected == actual else { throw .checksumMismatch(expected: expected, actual: actual) }
        let version = frame.readInteger(as: UInt8.self)!
        guard version == WireProtocol.version else { throw .unsupportedVersion(version) }
        let typeByte = frame.readInteger(as: UInt8.self)!
        guard let kind = PeerMessage.Kind(rawValue: typeByte) else { throw .unknownMessageType(typeByte) }
        var reader = FieldReader(buffer: frame, message: "\(kind)")
        let message = try decodeFields(kind, &reader)
        if reader.buffer.readableBytes != 0 {
            throw .trailingBytes(message: "\(kind)", count: reader.buffer.readableBytes)
        }
        return message
    }

    // MARK: fields

    static func encodeFields(_ message: PeerMessage, into b: inout ByteBuffer) throws(WireError) {
        let w = FieldWriter(message: "\(message.kind)")
        switch message {
        case .hello(let m):
            try w.node(m.nodeID, "nodeID", &b)
            b.writeInteger(m.epoch.rawValue)
            b.writeInteger(m.lastDurableLSN.rawValue)
            b.writeInteger(m.lastDurableEpoch.rawValue)
            guard m.history.count <= WireProtocol.historyEntriesMax else {
                throw w.invalid("history", "\(m.history.count) entries exceed \(WireProtocol.historyEntriesMax)")
            }
            b.writeInteger(UInt32(m.history.count))
            for entry in m.history {
                b.writeInteger(entry.epoch.rawValue)
                try w.node(entry.primary, "history.primary", &b)
                b.writeInteger(entry.startLSN.rawValue)
                // Durability: a set size (0: none), then the quorum and the members.
                guard let durability = entry.durability else {
                    b.writeInteger(UInt8(0))
                    continue
                }
                guard durability.set.count <= WireProtocol.durabilitySetMax else {
                    throw w.invalid("history.durability", "\(durability.set.count) members exceed \(WireProtocol.durabilitySetMax)")
                }
                b.writeInteger(UInt8(durability.set.count))
                b.writeInteger(UInt8(durability.quorum))
                for member in durability.set { try w.node(member, "history.durability.set", &b) }
            }
        case .streamFrom(let m):
            b.writeInteger(m.fromLSN.rawValue)
        case .records(let m):
            guard m.records.count <= WireProtocol.recordsBatchCountMax else {
                throw w.invalid("records", "\(m.records.count) records exceed the batch limit of \(WireProtocol.recordsBatchCountMax)")
            }
            b.writeInteger(m.senderEpoch.rawValue)
            b.writeInteger(UInt32(m.records.count))
            for record in m.records {
                b.writeInteger(record.lsn.rawValue)
                b.writeInteger(record.epoch.rawValue)
                b.writeInteger(record.kind)
                guard record.payload.count <= WireProtocol.recordPayloadBytesMax else {
                    throw w.invalid("payload", "\(record.payload.count) bytes exceed \(WireProtocol.recordPayloadBytesMax)")
                }
                b.writeInteger(UInt32(record.payload.count))
                b.writeBytes(record.payload)
            }
        case .ack(let m):
            b.writeInteger(m.durableLSN.rawValue)
            b.writeInteger(m.appliedLSN.rawValue)
        case .heartbeat(let m):
            b.writeInteger(m.primaryEpoch.rawValue)
            b.writeInteger(m.primaryAckedLSN.rawValue)
            b.writeInteger(m.primaryDurableLSN.rawValue)
        case .mustReseed(let m):
            try w.text(m.reason, "reason", &b)
            b.writeInteger(m.checkpointLSN.rawValue)
        case .refuse(let m):
            try w.text(m.ruleID, "ruleID", &b)
            try w.text(m.message, "message", &b)
        }
    }

    static func decodeFields(_ kind: PeerMessage.Kind, _ r: inout FieldReader) throws(WireError) -> PeerMessage {
        switch kind {
        case .hello:
            let node = try r.node("nodeID")
            let epoch = Epoch(try r.u64("epoch"))
            let lsn = LSN(try r.u64("lastDurableLSN"))
            let lastEpoch = Epoch(try r.u64("lastDurableEpoch"))
            let count = Int(try r.u32("history.count"))
            guard count <= WireProtocol.historyEntriesMax else {
                throw r.invalid("history", "\(count) entries exceed \(WireProtocol.historyEntriesMax)")
            }
            var history: [EpochHistoryEntry] = []
            history.reserveCapacity(count)
            for _ in 0..<count {
                let entryEpoch = Epoch(try r.u64("history.epoch"))
                let primary = try r.node("history.primary")
                let startLSN = LSN(try r.u64("history.startLSN"))
                let setCount = Int(try r.u8("history.durability.count"))
                var durability: EpochDurability?
                if setCount > 0 {
                    let quorum = Int(try r.u8("history.durability.quorum"))
                    var set: [NodeID] = []
                    for _ in 0..<setCount { set.append(try r.node("history.durability.set")) }
                    guard quorum >= 1, quorum <= setCount, Set(set).count == setCount, !set.contains(primary) else {
                        throw r.invalid("history.durability", "quorum \(quorum) of \(set.map(\.rawValue)) is not a durability")
                    }
                    durability = EpochDurability(quorum: quorum, set: set)
                }
                history.append(EpochHistoryEntry(epoch: entryEpoch, primary: primary, startLSN: startLSN, durability: durability))
            }
            return .hello(Hello(nodeID: node, epoch: epoch, lastDurableLSN: lsn, lastDurableEpoch: lastEpoch, history: history))
        case .streamFrom:
            return .streamFrom(StreamFrom(fromLSN: LSN(try r.u64("fromLSN"))))
        case .records:
            let epoch = Epoch(try r.u64("senderEpoch"))
            let count = Int(try r.u32("count"))
            guard count <= WireProtocol.recordsBatchCountMax else {
                throw r.invalid("count", "\(count) records exceed the batch limit of \(WireProtocol.recordsBatchCountMax)")
            }
            var records: [WireRecord] = []
            records.reserveCapacity(count)
            for _ in 0..<count {
                let lsn = LSN(try r.u64("lsn"))
                let recordEpoch = Epoch(try r.u64("epoch"))
                let recordKind = try r.u8("kind")
                let length = Int(try r.u32("payloadBytes"))
                guard length <= WireProtocol.recordPayloadBytesMax else {
                    throw r.invalid("payload", "\(length) bytes exceed \(WireProtocol.recordPayloadBytesMax)")
                }
                let payload = try r.bytes(length, "payload")
                records.append(WireRecord(lsn: lsn, epoch: recordEpoch, kind: recordKind, payload: payload))
            }
            return .records(RecordBatch(senderEpoch: epoch, records: records))
        case .ack:
            return .ack(Ack(durableLSN: LSN(try r.u64("durableLSN")), appliedLSN: LSN(try r.u64("appliedLSN"))))
        case .heartbeat:
            return .heartbeat(Heartbeat(
                primaryEpoch: Epoch(try r.u64("primaryEpoch")),
                primaryAckedLSN: LSN(try r.u64("primaryAckedLSN")),
                primaryDurableLSN: LSN(try r.u64("primaryDurableLSN"))))
        case .mustReseed:
            let reason = try r.text("reason")
            return .mustReseed(MustReseed(reason: reason, checkpointLSN: LSN(try r.u64("checkpointLSN"))))
        case .refuse:
            let rule = try r.text("ruleID")
            return .refuse(Refuse(ruleID: rule, message: try r.text("message")))
        }
    }
}

struct FieldWriter {
    let message: String

    func invalid(_ field: String, _ reason: String) -> WireError {
        .invalidField(message: message, field: field, reason: reason)
    }

    func text(_ value: String, _ field: String, _ b: inout ByteBuffer) throws(WireError) {
        try string(value, field, WireProtocol.textBytesMax, &b)
    }

    func node(_ value: NodeID, _ field: String, _ b: inout ByteBuffer) throws(WireError) {
        guard !value.rawValue.isEmpty else { throw invalid(field, "node id is empty") }
        try string(value.rawValue, field, WireProtocol.nodeIDBytesMax, &b)
    }

    private func string(_ value: String, _ field: String, _ maxBytes: Int, _ b: inout ByteBuffer) throws(WireError) {
        let utf8 = Array(value.utf8)
        guard utf8.count <= maxBytes else { throw invalid(field, "\(utf8.count) bytes exceed \(maxBytes)") }
        b.writeInteger(UInt16(utf8.count))
        b.writeBytes(utf8)
    }
}

struct FieldReader {
    var buffer: ByteBuffer
    let message: String

    func invalid(_ field: String, _ reason: String) -> WireError {
        .invalidField(message: message, field: field, reason: reason)
    }

    mutating func u8(_ field: String) throws(WireError) -> UInt8 {
        guard let v = buffer.readInteger(as: UInt8.self) else { throw .truncated(message: message, field: field) }
        return v
    }

    mutating func u16(_ field: String) throws(WireError) -> UInt16 {
        guard let v = buffer.readInteger(as: UInt16.self) else { throw .truncated(message: message, field: field) }
        return v
    }

    mutating func u32(_ field: String) throws(WireError) -> UInt32 {
        guard let v = buffer.readInteger(as: UInt32.self) else { throw .truncated(message: message, field: field) }
        return v
    }

    mutating func u64(_ field: String) throws(WireError) -> UInt64 {
        guard let v = buffer.readInteger(as: UInt64.self) else { throw .truncated(message: message, field: field) }
        return v
    }

    mutating func bytes(_ count: Int, _ field: String) throws(WireError) -> [UInt8] {
        guard let v = buffer.readBytes(length: count) else { throw .truncated(message: message, field: field) }
        return v
    }

    mutating func text(_ field: String) throws(WireError) -> String {
        try string(field, WireProtocol.textBytesMax)
    }

    mutating func node(_ field: String) throws(WireError) -> NodeID {
        let s = try string(field, WireProtocol.nodeIDBytesMax)
        guard !s.isEmpty else { throw invalid(field, "node id is empty") }
        return NodeID(s)
    }

    private mutating func string(_ field: String, _ maxBytes: Int) throws(WireError) -> String {
        let count = Int(try u16(field))
        guard count <= maxBytes else { throw invalid(field, "\(count) bytes exceed \(maxBytes)") }
        let raw = try bytes(count, field)
        guard let s = String(validating: raw, as: UTF8.self) else { throw invalid(field, "not valid UTF-8") }
        return s
    }
}
