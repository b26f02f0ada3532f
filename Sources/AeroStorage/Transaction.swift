// Transaction.swift — what a writer asks the engine to commit, and the public value types
// around it (options, counters, read results).

import AeroCore

/// A batch of puts and deletes applied atomically, guarded by compare-and-set preconditions
/// checked against the newest state (committed or ahead of it in the log) at commit time.
public struct Transaction: Sendable, Equatable {
    public enum Precondition: Sendable, Equatable {
        /// The key's current value equals `value` (nil: the key is absent).
        case valueEquals(key: String, value: [UInt8]?)
    }

    public var mutations: [Mutation] = []
    public var preconditions: [Precondition] = []

    public init(mutations: [Mutation] = [], preconditions: [Precondition] = []) {
        self.mutations = mutations
        self.preconditions = preconditions
    }

    public mutating func put(_ key: String, _ value: [UInt8]) { mutations.append(.put(key: key, value: value)) }
    public mutating func delete(_ key: String) { mutations.append(.delete(key: key)) }
    public mutating func expect(_ key: String, equals value: [UInt8]?) {
        preconditions.append(.valueEquals(key: key, value: value))
    }

    /// Checks key and value limits; returns the first violation.
    func validationError() -> StorageError? {
        if mutations.isEmpty { return .emptyTransaction }
        if mutations.count > WALFormat.transactionOpsMax {
            return .invalidKey(mutations[0].key, reason: "a transaction holds at most \(WALFormat.transactionOpsMax) operations")
        }
        var payload = 4
        for m in mutations {
            let keyBytes = m.key.utf8.count
            if keyBytes == 0 { return .invalidKey(m.key, reason: "empty") }
            if keyBytes > WALFormat.keyBytesMax { return .invalidKey(m.key, reason: "\(keyBytes) bytes; the limit is \(WALFormat.keyBytesMax)") }
            payload += 3 + keyBytes
            if case .put(let key, let value) = m {
                if value.count > WALFormat.valueBytesMax { return .valueTooLarge(key: key, bytes: value.count) }
                payload += 4 + value.count
            }
        }
        if payload > WALFormat.recordPayloadBytesMax {
            return .valueTooLarge(key: mutations[0].key, bytes: payload)
        }
        return nil
    }
}

public struct StorageOptions: Sendable {
    /// A new segment is started at the first batch boundary after a segment reaches this size.
    public var segmentBytesMax: UInt64 = 64 << 20
    /// A checkpoint is taken in the background once this many WAL bytes were written since the
    /// last one; 0 disables the trigger (checkpoints then happen only on request).
    public var checkpointWALBytesTrigger: UInt64 = 256 << 20
    /// Written when the directory has no authority file yet.
    public var initialAuthority: Authority = .standalonePrimary(NodeID("local"))
    /// Committers wait while this many bytes are queued for the next WAL write (back-pressure).
    public var pendingBytesMax: Int = 32 << 20
    public var io: any StorageIO = PosixIO()

    public init() {}
}

/// Counters, monotonic unless said otherwise, ready to be exported as metrics.
public struct StorageCounters: Sendable, Equatable, Codable {
    public var commits: UInt64 = 0
    public var replicatedRecords: UInt64 = 0
    public var commitFailures: UInt64 = 0
    public var walWrites: UInt64 = 0
    public var fsyncs: UInt64 = 0
    public var walBytesWritten: UInt64 = 0
    public var groupCommitBatches: UInt64 = 0
    public var groupCommitRecords: UInt64 = 0
    public var groupCommitBatchRecordsMax: UInt64 = 0
    /// Batches by record count: ≤1, ≤2, ≤4, ≤8, ≤16, ≤32, ≤64, >64.
    public var groupCommitBatchHistogram: [UInt64] = Array(repeating: 0, count: 8)
    public var segmentsCreated: UInt64 = 0
    public var segmentsRemoved: UInt64 = 0
    public var checkpoints: UInt64 = 0
    public var checkpointFailures: UInt64 = 0
    public var recoveryDurationNs: UInt64 = 0
    public var recoveryRecords: UInt64 = 0
    public var recoveryBytes: UInt64 = 0
    public var tornTailsTruncated: UInt64 = 0
    /// Gauges.
    public var keys: UInt64 = 0
    public var liveSnapshots: UInt64 = 0

    public static let batchHistogramBounds: [UInt64] = [1, 2, 4, 8, 16, 32, 64]

    public init() {}

    mutating func recordBatch(records: UInt64) {
        groupCommitBatches += 1
        groupCommitRecords += records
        groupCommitBatchRecordsMax = max(groupCommitBatchRecordsMax, records)
        let bucket = Self.batchHistogramBounds.firstIndex(where: { records <= $0 }) ?? 7
        groupCommitBatchHistogram[bucket] += 1
    }
}

/// What recovery found and did when the engine opened.
public struct RecoveryReport: Sendable, Codable {
    public var checkpointLSN: UInt64
    public var recordsReplayed: Int
    public var bytesReplayed: UInt64
    public var segments: Int
    public var tornTail: TornTail?
    public var removedTemporaryFiles: [String]
    public var lastLSN: UInt64
    public var lastEpoch: UInt64
    public var durationNs: UInt64
}

/// The answer to a request for WAL records from a given LSN (streaming to a replica).
public enum WALReadResult: Sendable, Equatable {
    /// Records from the requested LSN on, in order (empty when the requester is caught up).
    case records([WALRecord])
    /// The WAL at the requested LSN was removed after a checkpoint: re-seed from a checkpoint.
    case walGone(oldestAvailable: LSN?, checkpointLSN: LSN)
}
