// RecordConversion.swift — WAL records <-> wire records. The wire carries the storage engine's
// record exactly (kind, epoch, LSN, payload); the engine verifies it again when it appends.

import AeroCore
import AeroStorage

extension WireRecord {
    public init(_ record: WALRecord) {
        self.init(lsn: record.lsn, epoch: record.epoch, kind: record.kind.rawValue, payload: record.payload)
    }
}

extension WALRecord {
    /// nil when the kind byte is not one this build's storage engine knows.
    public init?(_ wire: WireRecord) {
        guard let kind = RecordKind(rawValue: wire.kind) else { return nil }
        self.init(kind: kind, epoch: wire.epoch, lsn: wire.lsn, payload: wire.payload)
    }
}

extension RecordBatch {
    /// Splits `records` (consecutive, ascending) into batches within the wire limits.
    public static func batches(of records: [WALRecord], senderEpoch: Epoch) -> [RecordBatch] {
        var batches: [RecordBatch] = []
        var current: [WireRecord] = []
        var payloadBytes = 0
        for record in records {
            precondition(record.payload.count <= WireProtocol.recordPayloadBytesMax, "a WAL record larger than a wire batch")
            if current.count == WireProtocol.recordsBatchCountMax
                || payloadBytes + record.payload.count > WireProtocol.recordsBatchBytesMax
            {
                batches.append(RecordBatch(senderEpoch: senderEpoch, records: current))
                current = []
                payloadBytes = 0
            }
            current.append(WireRecord(record))
            payloadBytes += record.payload.count
        }
        if !current.isEmpty { batches.append(RecordBatch(senderEpoch: senderEpoch, records: current)) }
        return batches
    }
}
