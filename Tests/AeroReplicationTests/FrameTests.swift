import AeroCore
import AeroReplication
import AeroStorage
import NIOCore
import Testing

@Suite("Wire frames")
struct FrameTests {
    @Test("every message kind survives encode and decode unchanged")
    func roundTrip() throws {
        #expect(Set(Fixture.everyMessage.map(\.kind)) == Set(PeerMessage.Kind.allCases))
        for message in Fixture.everyMessage {
            var buffer = try WireCodec.frame(message)
            #expect(try WireCodec.scan(buffer) == .complete(frameBytes: buffer.readableBytes))
            let decoded = try WireCodec.decodeFrame(&buffer)
            #expect(decoded == message)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test("the header is length and CRC32C of the body, the body starts with version and type")
    func layout() throws {
        let buffer = try WireCodec.frame(.streamFrom(StreamFrom(fromLSN: LSN(0x0102_0304_0506_0708))))
        let bytes = Fixture.bytes(buffer)
        let body = Array(bytes[8...])
        #expect(bytes[0..<4] == [0, 0, 0, 10])
        #expect(body == [WireProtocol.version, PeerMessage.Kind.streamFrom.rawValue, 1, 2, 3, 4, 5, 6, 7, 8])
        let crc = CRC32C.checksum(body)
        #expect(Array(bytes[4..<8]) == [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)])
    }

    @Test("a partial frame needs more data, at every split point")
    func partial() throws {
        let full = Fixture.bytes(try WireCodec.frame(Fixture.everyMessage[0]))
        for cut in 0..<full.count {
            var buffer = ByteBufferAllocator().buffer(capacity: cut)
            buffer.writeBytes(full[0..<cut])
            #expect(try WireCodec.scan(buffer) == .needMoreData)
        }
    }

    @Test("a length above frameBodyBytesMax is refused from the header alone")
    func oversizedHeader() throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 8)
        buffer.writeInteger(UInt32(WireProtocol.frameBodyBytesMax + 1))
        buffer.writeInteger(UInt32(0))
        #expect(throws: WireError.frameTooLarge(bodyBytes: WireProtocol.frameBodyBytesMax + 1, maxBytes: WireProtocol.frameBodyBytesMax)) {
            try WireCodec.scan(buffer)
        }
        // Exactly the maximum is not refused by the header check.
        var atMax = ByteBufferAllocator().buffer(capacity: 8)
        atMax.writeInteger(UInt32(WireProtocol.frameBodyBytesMax))
        atMax.writeInteger(UInt32(0))
        #expect(try WireCodec.scan(atMax) == .needMoreData)
    }

    @Test("a body shorter than version + type is refused")
    func tooSmall() {
        for length in [0, 1] {
            let buffer = Fixture.rawFrame(body: Array(repeating: WireProtocol.version, count: length))
            #expect(throws: WireError.frameTooSmall(bodyBytes: length)) { try WireCodec.scan(buffer) }
        }
    }

    @Test("a flipped bit anywhere in the body is a checksum mismatch")
    func checksum() throws {
        let good = Fixture.bytes(try WireCodec.frame(Fixture.everyMessage[2]))
        for index in 8..<good.count {
            var bad = good
            bad[index] ^= 0x10
            var buffer = ByteBufferAllocator().buffer(capacity: bad.count)
            buffer.writeBytes(bad)
            #expect {
                _ = try WireCodec.decodeFrame(&buffer)
            } throws: { error in
                guard case WireError.checksumMismatch = error else { return false }
                return true
            }
        }
    }

    @Test("an unknown version or message type is refused")
    func unknownVersionAndType() {
        var buffer = Fixture.rawFrame(body: [WireProtocol.version + 1, 1])
        #expect(throws: WireError.unsupportedVersion(WireProtocol.version + 1)) { try WireCodec.decodeFrame(&buffer) }
        var unknown = Fixture.rawFrame(body: [WireProtocol.version, 200])
        #expect(throws: WireError.unknownMessageType(200)) { try WireCodec.decodeFrame(&unknown) }
        var zero = Fixture.rawFrame(body: [WireProtocol.version, 0])
        #expect(throws: WireError.unknownMessageType(0)) { try WireCodec.decodeFrame(&zero) }
    }

    @Test("a truncated field and trailing bytes are refused, naming the field")
    func truncatedAndTrailing() {
        let v = WireProtocol.version
        var short = Fixture.rawFrame(body: [v, PeerMessage.Kind.ack.rawValue, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0])
        #expect(throws: WireError.truncated(message: "ack", field: "appliedLSN")) { try WireCodec.decodeFrame(&short) }
        var long = Fixture.rawFrame(body: [v, PeerMessage.Kind.streamFrom.rawValue] + Array(repeating: 0, count: 9))
        #expect(throws: WireError.trailingBytes(message: "streamFrom", count: 1)) { try WireCodec.decodeFrame(&long) }
    }

    @Test("strings: over-long, invalid UTF-8 and empty node ids are refused")
    func strings() {
        let v = WireProtocol.version
        let refuse = PeerMessage.Kind.refuse.rawValue
        var badUTF8 = Fixture.rawFrame(body: [v, refuse, 0, 2, 0xC3, 0x28, 0, 0])
        #expect(throws: WireError.invalidField(message: "refuse", field: "ruleID", reason: "not valid UTF-8")) {
            try WireCodec.decodeFrame(&badUTF8)
        }
        let overLong = UInt16(WireProtocol.textBytesMax + 1)
        var tooLong = Fixture.rawFrame(body: [v, refuse, UInt8(overLong >> 8), UInt8(overLong & 0xFF)])
        #expect(throws: WireError.invalidField(message: "refuse", field: "ruleID", reason: "\(overLong) bytes exceed \(WireProtocol.textBytesMax)")) {
            try WireCodec.decodeFrame(&tooLong)
        }
        var emptyNode = Fixture.rawFrame(body: [v, PeerMessage.Kind.hello.rawValue, 0, 0] + Array(repeating: 0, count: 8))
        #expect(throws: WireError.invalidField(message: "hello", field: "nodeID", reason: "node id is empty")) {
            try WireCodec.decodeFrame(&emptyNode)
        }
    }

    /// Type bytes 8–11 carried fence, fenceReceipt, unfence and follow, which were never sent
    /// (promotions use the admin HTTP routes); they are retired, never reused.
    @Test("the retired type bytes 8–11 are unknown messages", arguments: [UInt8(8), 9, 10, 11])
    func retiredTypes(type: UInt8) {
        #expect(PeerMessage.Kind(rawValue: type) == nil)
        var frame = Fixture.rawFrame(body: [WireProtocol.version, type] + Array(repeating: 0, count: 12))
        #expect(throws: WireError.unknownMessageType(type)) { try WireCodec.decodeFrame(&frame) }
    }

    @Test("a records count above the batch limit is refused before reading records")
    func recordCount() {
        let count = UInt32(WireProtocol.recordsBatchCountMax + 1)
        var body: [UInt8] = [WireProtocol.version, PeerMessage.Kind.records.rawValue, 0, 0, 0, 0, 0, 0, 0, 1]
        body += [UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
        var buffer = Fixture.rawFrame(body: body)
        #expect(throws: WireError.invalidField(message: "records", field: "count", reason: "\(count) records exceed the batch limit of \(WireProtocol.recordsBatchCountMax)")) {
            try WireCodec.decodeFrame(&buffer)
        }
    }

    @Test("the sender refuses to encode what a receiver would refuse")
    func encoderLimits() throws {
        let tooMany = RecordBatch(senderEpoch: Epoch(1), records: (1...UInt64(WireProtocol.recordsBatchCountMax + 1)).map { Fixture.record($0, payload: []) })
        #expect(throws: WireError.invalidField(message: "records", field: "records", reason: "\(WireProtocol.recordsBatchCountMax + 1) records exceed the batch limit of \(WireProtocol.recordsBatchCountMax)")) {
            try WireCodec.frame(.records(tooMany))
        }
        // Two records of the largest payload exceed the frame bound: refused, nothing written.
        let big = [UInt8](repeating: 7, count: WireProtocol.recordPayloadBytesMax)
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        #expect {
            try WireCodec.encodeFrame(.records(RecordBatch(senderEpoch: Epoch(1), records: [
                Fixture.record(1, payload: big), Fixture.record(2, payload: big),
            ])), into: &buffer)
        } throws: { error in
            guard case WireError.frameTooLarge = error else { return false }
            return true
        }
        #expect(buffer.readableBytes == 0)
        let long = (1...UInt64(WireProtocol.historyEntriesMax + 1)).map { EpochHistoryEntry(epoch: Epoch($0), primary: "n1", startLSN: LSN($0)) }
        #expect(throws: WireError.invalidField(message: "hello", field: "history", reason: "\(WireProtocol.historyEntriesMax + 1) entries exceed \(WireProtocol.historyEntriesMax)")) {
            try WireCodec.frame(.hello(Hello(nodeID: "n1", epoch: Epoch(1), lastDurableLSN: .zero, lastDurableEpoch: .zero, history: long)))
        }
        // The longest allowed history, with the longest node ids, fits in one frame.
        let longestID = NodeID(String(repeating: "n", count: WireProtocol.nodeIDBytesMax))
        let longest = (1...UInt64(WireProtocol.historyEntriesMax)).map { EpochHistoryEntry(epoch: Epoch($0), primary: longestID, startLSN: LSN($0)) }
        var frame = try WireCodec.frame(.hello(Hello(nodeID: longestID, epoch: Epoch(4096), lastDurableLSN: .zero, lastDurableEpoch: .zero, history: longest)))
        guard case .hello(let decoded) = try WireCodec.decodeFrame(&frame) else { Issue.record("not a hello"); return }
        #expect(decoded.history == longest)
    }

    @Test("a full batch at the advertised limits fits in one frame")
    func fullBatchFits() throws {
        let perRecord = WireProtocol.recordsBatchBytesMax / WireProtocol.recordsBatchCountMax
        let records = (1...UInt64(WireProtocol.recordsBatchCountMax)).map {
            Fixture.record($0, payload: [UInt8](repeating: 1, count: perRecord))
        }
        var buffer = try WireCodec.frame(.records(RecordBatch(senderEpoch: Epoch(1), records: records)))
        #expect(buffer.readableBytes <= WireProtocol.frameBodyBytesMax + WireProtocol.headerBytes)
        guard case .records(let batch) = try WireCodec.decodeFrame(&buffer) else {
            Issue.record("not a records message")
            return
        }
        #expect(batch.records == records)
    }
}
