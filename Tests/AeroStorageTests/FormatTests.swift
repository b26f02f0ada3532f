import AeroCore
@testable import AeroStorage
import Foundation
import Testing

@Suite struct FormatTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // Slicing-by-8 and the byte-wise tail agree on every length and alignment.
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for n in [1, 7, 8, 9, 63, 64, 65, 299] {
            var bitwise: UInt32 = 0xFFFF_FFFF
            for b in data.prefix(n) {
                bitwise ^= UInt32(b)
                for _ in 0..<8 { bitwise = (bitwise & 1) != 0 ? (bitwise >> 1) ^ 0x82F6_3B78 : bitwise >> 1 }
            }
            #expect(CRC32C.checksum(Array(data.prefix(n))) == ~bitwise)
            let split = n / 3
            let pieces = data.prefix(n).withUnsafeBytes { raw in
                CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[..<split])), UnsafeRawBufferPointer(rebasing: raw[split...]))
            }
            #expect(pieces == ~bitwise)
        }
    }

    @Test func recordsRoundTripAndRejectEveryFlippedBit() {
        let mutations: [Mutation] = [.put(key: "a", value: [1, 2, 3]), .delete(key: "bé")]
        let record = WALRecord(kind: .transaction, epoch: Epoch(3), lsn: LSN(42), payload: TransactionCodec.encode(mutations))
        let bytes = record.encoded()
        let decoded = bytes.withUnsafeBytes { WALRecord.decode($0, at: 0) }
        guard case .success(let (back, size)) = decoded else { Issue.record("decode failed"); return }
        #expect(back == record && size == bytes.count)
        #expect(TransactionCodec.decode(back.payload) == mutations)
        for bit in 0..<(bytes.count * 8) {
            var damaged = bytes
            damaged[bit / 8] ^= UInt8(1 << (bit % 8))
            let result = damaged.withUnsafeBytes { WALRecord.decode($0, at: 0) }
            if case .success = result { Issue.record("flipped bit \(bit) still decodes") }
        }
    }

    @Test func segmentHeaderRoundTrips() throws {
        let header = WALFormat.encodeSegmentHeader(firstLSN: LSN(7), nodeID: "n2")
        let decoded = try WALFormat.decodeSegmentHeader(header[...]).get()
        #expect(decoded.firstLSN == LSN(7) && decoded.nodeID == "n2" && decoded.version == WALFormat.version)
        var bad = header
        bad[13] ^= 1
        #expect(throws: (any Error).self) { try WALFormat.decodeSegmentHeader(bad[...]).get() }
    }
}
