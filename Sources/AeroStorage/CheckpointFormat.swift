// CheckpointFormat.swift — a consistent image of the store as of one LSN.
//
// File `checkpoint-<LSN, 20 digits>.ckpt`, written with `StorageIO.replaceDurably` (temp file,
// synced, renamed, directory synced), so a checkpoint either exists whole or not at all:
//   magic "AEROCKP1" | version UInt32 | LSN UInt64 | epoch UInt64 | entry count UInt64 |
//   entries (key length UInt16, key, value length UInt32, value), keys ascending |
//   CRC32C of everything before it (UInt32)
// The same bytes are what a primary sends to re-seed a replica (`StorageEngine.checkpointImage`,
// `StorageEngine.checkpointChunk`), installed there by `ReseedInstall.install`.

import AeroCore

public enum CheckpointFormat {
    static let magic: [UInt8] = Array("AEROCKP1".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 8 + 4 + 8 + 8 + 8

    static func fileName(lsn: LSN) -> String {
        let digits = String(lsn.rawValue)
        return "checkpoint-" + String(repeating: "0", count: 20 - digits.count) + digits + ".ckpt"
    }

    static func lsn(ofFileName name: String) -> LSN? {
        guard name.hasPrefix("checkpoint-"), name.hasSuffix(".ckpt"), name.count == 36 else { return nil }
        return UInt64(name.dropFirst(11).prefix(20)).map { LSN($0) }
    }

    static func encode(lsn: LSN, epoch: Epoch, entries: [(String, [UInt8])]) -> [UInt8] {
        var out = magic
        out.appendLE(version)
        out.appendLE(lsn.rawValue)
        out.appendLE(epoch.rawValue)
        out.appendLE(UInt64(entries.count))
        for (key, value) in entries {
            let k = Array(key.utf8)
            out.appendLE(UInt16(k.count))
            out += k
            out.appendLE(UInt32(value.count))
            out += value
        }
        out.appendLE(CRC32C.checksum(out))
        return out
    }

    public struct Image: Sendable {
        public var lsn: LSN
        public var epoch: Epoch
        public var entries: [(String, [UInt8])]
    }

    /// Decodes and verifies a checkpoint; the error names what is wrong.
    static func decode(_ bytes: [UInt8]) -> Result<Image, CheckpointFailure> {
        guard bytes.count >= headerBytes + 4 else { return .failure(.init("file is \(bytes.count) bytes, shorter than a header")) }
        guard Array(bytes[0..<8]) == magic else { return .failure(.init("bad magic")) }
        let body = bytes[0..<bytes.count - 4]
        let stored = bytes[...].loadLE(UInt32.self, at: bytes.count - 4)
        guard CRC32C.checksum(body) == stored else { return .failure(.init("checksum mismatch")) }
        let s = bytes[...]
        let version = s.loadLE(UInt32.self, at: 8)
        guard version == CheckpointFormat.version else { return .failure(.init("unsupported version \(version)")) }
        let lsn = LSN(s.loadLE(UInt64.self, at: 12))
        let epoch = Epoch(s.loadLE(UInt64.self, at: 20))
        let count = s.loadLE(UInt64.self, at: 28)
        var i = headerBytes
        let end = bytes.count - 4
        var entries: [(String, [UInt8])] = []
        entries.reserveCapacity(Int(min(count, UInt64(end / 6))))
        for n in 0..<count {
            guard end - i >= 2 else { return .failure(.init("entry \(n) truncated")) }
            let kl = Int(s.loadLE(UInt16.self, at: i))
            i += 2
            guard end - i >= kl + 4 else { return .failure(.init("entry \(n) truncated")) }
            let key = String(decoding: bytes[i..<i + kl], as: UTF8.self)
            i += kl
            let vl = Int(s.loadLE(UInt32.self, at: i))
            i += 4
            guard end - i >= vl else { return .failure(.init("entry \(n) truncated")) }
            entries.append((key, Array(bytes[i..<i + vl])))
            i += vl
        }
        guard i == end else { return .failure(.init("\(end - i) bytes after the last entry")) }
        return .success(Image(lsn: lsn, epoch: epoch, entries: entries))
    }

    struct CheckpointFailure: Error { var why: String; init(_ why: String) { self.why = why } }
}
