// CRC32C.swift — the Castagnoli CRC (polynomial 0x1EDC6F41, reflected 0x82F63B78) that frames
// every WAL record, segment header, checkpoint, authority file and peer wire frame. In AeroCore
// because both the storage engine and the wire protocol use it.
//
// Implemented here (slicing-by-8, eight 256-entry tables built once) rather than taken from a
// package: the WAL format must not depend on a library's choice of polynomial or seed.
// Check value: crc32c("123456789") == 0xE3069283 (tested).

public enum CRC32C {
    static let polynomialReflected: UInt32 = 0x82F6_3B78

    /// tables[k][b]: the CRC contribution of byte b followed by k zero bytes.
    static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomialReflected : crc >> 1 }
            tables[0][byte] = crc
        }
        for byte in 0..<256 {
            for k in 1..<8 {
                let previous = tables[k - 1][byte]
                tables[k][byte] = (previous >> 8) ^ tables[0][Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// Flat copy of `tables` (table k at offset 256*k) for the hot loop.
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// Continues a CRC over `buffer`. Start with `crc: 0`; the result can be fed back in to
    /// checksum data that arrives in pieces.
    public static func update(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        guard var p = buffer.baseAddress, buffer.count > 0 else { return crc }
        var remaining = buffer.count
        flat.withUnsafeBufferPointer { t in
            while remaining >= 8 {
                let word = p.loadUnaligned(as: UInt64.self).littleEndian
                let low = UInt32(truncatingIfNeeded: word) ^ c
                let high = UInt32(truncatingIfNeeded: word >> 32)
                c = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                p += 8
                remaining -= 8
            }
            while remaining > 0 {
                c = (c >> 8) ^ t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
                p += 1
                remaining -= 1
            }
        }
        return ~c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }
}
