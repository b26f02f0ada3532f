import AeroCore
import AeroReplication
import AeroStorage
import NIOCore

/// Shared test values.
enum Fixture {
    /// Epoch 1 led by n1 from LSN 1, epoch 2 by n3 from 11, epoch 3 by n1 from 21.
    static let history = [
        EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1)),
        EpochHistoryEntry(epoch: Epoch(2), primary: "n3", startLSN: LSN(11)),
        EpochHistoryEntry(epoch: Epoch(3), primary: "n1", startLSN: LSN(21)),
    ]

    static func record(_ lsn: UInt64, epoch: UInt64 = 1, payload: [UInt8] = [1, 2, 3]) -> WireRecord {
        WireRecord(lsn: LSN(lsn), epoch: Epoch(epoch), kind: 1, payload: payload)
    }

    /// One message of every kind, with non-trivial field values.
    static let everyMessage: [PeerMessage] = [
        .hello(Hello(nodeID: "n1", epoch: Epoch(3), lastDurableLSN: LSN(42), lastDurableEpoch: Epoch(2), history: history)),
        .streamFrom(StreamFrom(fromLSN: LSN(43))),
        .records(RecordBatch(senderEpoch: Epoch(3), records: [
            record(43, epoch: 2, payload: []), record(44, epoch: 3, payload: Array(0..<200)),
        ])),
        .ack(Ack(durableLSN: LSN(44), appliedLSN: LSN(43))),
        .heartbeat(Heartbeat(primaryEpoch: Epoch(3), primaryAckedLSN: LSN(40), primaryDurableLSN: LSN(44))),
        .mustReseed(MustReseed(reason: "WAL truncated — é", checkpointLSN: LSN(1000))),
        .refuse(Refuse(ruleID: "REPL-STALE-EPOCH", message: "peer is at epoch 2")),
    ]

    /// A frame with an arbitrary body and a correct (or given) checksum: for malformed input.
    static func rawFrame(body: [UInt8], checksum: UInt32? = nil, lengthOverride: UInt32? = nil) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: body.count + 8)
        buffer.writeInteger(lengthOverride ?? UInt32(body.count))
        buffer.writeInteger(checksum ?? CRC32C.checksum(body))
        buffer.writeBytes(body)
        return buffer
    }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] {
        Array(buffer.readableBytesView)
    }
}
