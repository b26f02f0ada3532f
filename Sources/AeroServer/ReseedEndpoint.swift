// ReseedEndpoint.swift — the primary's side of re-seeding: its latest checkpoint, in chunks.
//
//   GET /v1/checkpoint[?lsn=L&offset=O]
//     200, body = at most `checkpointChunkBytesMax` bytes of checkpoint L from O (no lsn: the latest
//     checkpoint, taken now if there is none), headers
//       X-AeroDB-Checkpoint-LSN    L
//       X-AeroDB-Checkpoint-Bytes  the whole file's size
//       X-AeroDB-Chunk-Offset      O
//       X-AeroDB-Chunk-CRC32C      CRC32C of this body (hex): a damaged chunk is detected at once
//       X-AeroDB-Epoch             this primary's epoch (the client starts over if it changes)
//     409 RESEED-NOT-PRIMARY on a replica (re-seed only from the primary of the current epoch)
//     410 RESEED-CHECKPOINT-GONE when checkpoint L was replaced by a newer one (start over)
//
// A checkpoint file is immutable once renamed into place, so chunks read at different times
// belong to one consistent image; the image's own CRC32C is checked again before installing.

import AeroCore
import AeroStorage
import Dispatch

extension KVService {
    /// Largest body of one checkpoint chunk.
    public static let checkpointChunkBytesMax = 1 << 20

    public func checkpointChunk(lsnText: String?, offsetText: String?) async -> APIResponse {
        let authority = engine.authority
        guard authority.role == .primary, !engine.isFenced else {
            return reseedError(409, RuleID.reseedNotPrimary.rawValue,
                "\(config.id) is a \(authority.role.rawValue) at epoch \(authority.epoch)\(authority.following.map { " following \($0)" } ?? ""); re-seed from the primary")
        }
        let offset: UInt64
        if let offsetText {
            guard let value = UInt64(offsetText) else {
                return respond(.request(.badRequest, "offset: expected an unsigned integer, got \"\(offsetText.prefix(32))\""))
            }
            offset = value
        } else {
            offset = 0
        }
        let lsn: LSN
        if let lsnText {
            guard let value = UInt64(lsnText) else {
                return respond(.request(.badRequest, "lsn: expected an unsigned integer, got \"\(lsnText.prefix(32))\""))
            }
            lsn = LSN(value)
        } else {
            do {
                let engine = self.engine
                lsn = try await Self.offLoop {
                    let latest = engine.latestCheckpointLSN
                    return latest == .zero ? try engine.checkpointBlocking() : latest
                }
            } catch {
                return respond(.request(.badRequest, "cannot take a checkpoint: \(error)"))
            }
        }
        let chunk: (bytes: [UInt8], totalBytes: UInt64)?
        do {
            let engine = self.engine
            chunk = try await Self.offLoop { try engine.checkpointChunk(lsn: lsn, offset: offset, bytesMax: Self.checkpointChunkBytesMax) }
        } catch {
            return reseedError(500, RuleID.nodeStorageFailed.rawValue, "reading checkpoint \(lsn): \(error)")
        }
        guard let chunk else {
            return reseedError(410, RuleID.reseedCheckpointGone.rawValue, "checkpoint \(lsn) no longer exists (a newer one replaced it); start over")
        }
        let crc = String(CRC32C.checksum(chunk.bytes), radix: 16)
        return APIResponse(status: 200, headers: [
            ("X-AeroDB-Checkpoint-LSN", "\(lsn.rawValue)"),
            ("X-AeroDB-Checkpoint-Bytes", "\(chunk.totalBytes)"),
            ("X-AeroDB-Chunk-Offset", "\(offset)"),
            ("X-AeroDB-Chunk-CRC32C", crc),
            ("X-AeroDB-Epoch", "\(engine.currentEpoch.rawValue)"),
        ], body: chunk.bytes, contentType: "application/octet-stream")
    }

    private func reseedError(_ status: Int, _ code: String, _ message: String) -> APIResponse {
        .json(.object(["error": .object([
            "code": .string(code), "message": .string(message),
            "explanation": .object(["rule": .string(code), "summary": .string(message)]),
        ])]), status: status)
    }

    /// Runs blocking disk work on a thread of its own, not on the NIO event loop.
    static func offLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
