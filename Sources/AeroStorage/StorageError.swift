// StorageError.swift — every way AeroStorage refuses, each with a stable rule id
// (a `RuleID` case; docs/rule-ids.md lists each with the test that trips it).

import AeroCore

/// Damage found in the WAL or a checkpoint. Opening stops; nothing is dropped silently.
public struct WALDamage: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        /// A record that fails its checksum or framing, with valid records after it.
        case corruptRecord = "corrupt-record"
        /// A segment header that fails its checksum, magic or version, not at the tail.
        case badSegmentHeader = "bad-segment-header"
        /// The next record or segment does not carry the next LSN.
        case lsnGap = "lsn-gap"
        /// A record's epoch is lower than the one before it, or than the checkpoint's.
        case epochBackwards = "epoch-backwards"
        /// The newest checkpoint fails its checksum or cannot be read.
        case corruptCheckpoint = "corrupt-checkpoint"
        /// The WAL holds an epoch the authority file has not accepted.
        case authorityBehindWAL = "authority-behind-wal"
    }
    public var kind: Kind
    public var segment: String
    public var offset: UInt64
    public var lsn: LSN
    public var detail: String

    public init(kind: Kind, segment: String, offset: UInt64, lsn: LSN, detail: String) {
        self.kind = kind
        self.segment = segment
        self.offset = offset
        self.lsn = lsn
        self.detail = detail
    }

    /// The registry id of this damage (RuleID.swift): one per kind.
    public var rule: RuleID {
        switch kind {
        case .corruptRecord: return .storageRecoveryCorruptRecord
        case .badSegmentHeader: return .storageRecoveryBadSegmentHeader
        case .lsnGap: return .storageRecoveryLsnGap
        case .epochBackwards: return .storageRecoveryEpochBackwards
        case .corruptCheckpoint: return .storageRecoveryCorruptCheckpoint
        case .authorityBehindWAL: return .storageRecoveryAuthorityBehindWal
        }
    }

    public var ruleID: String { rule.rawValue }

    enum CodingKeys: String, CodingKey { case kind, segment, offset, lsn, detail, ruleID = "rule_id" }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        segment = try c.decode(String.self, forKey: .segment)
        offset = try c.decode(UInt64.self, forKey: .offset)
        lsn = LSN(try c.decode(UInt64.self, forKey: .lsn))
        detail = try c.decode(String.self, forKey: .detail)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(ruleID, forKey: .ruleID)
        try c.encode(segment, forKey: .segment)
        try c.encode(offset, forKey: .offset)
        try c.encode(lsn.rawValue, forKey: .lsn)
        try c.encode(detail, forKey: .detail)
    }

    public var description: String {
        "[\(ruleID)] \(segment) at offset \(offset), LSN \(lsn): \(detail)"
    }
}

public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Recovery found damage before the tail; see `WALDamage`.
    case damaged(WALDamage)
    /// A write or sync of the WAL failed earlier; the engine refuses all writes until reopened.
    case walFailed(String)
    /// The engine was closed.
    case closed
    /// This node does not accept local writes: it is a replica, or it was fenced.
    case notWritable(role: NodeRole, following: NodeID?, epoch: Epoch)
    /// A compare-and-set precondition did not hold; nothing was written.
    case preconditionFailed(key: String)
    case invalidKey(String, reason: String)
    case valueTooLarge(key: String, bytes: Int)
    case emptyTransaction
    /// A replicated record is not the next LSN this log expects.
    case replicationGap(expected: LSN, received: LSN)
    /// A replicated record's epoch breaks the lineage (lower than the log's, or not accepted by
    /// the authority file, or not starting where the epoch history says).
    case epochLineage(String)
    /// The authority file refused a change (an epoch going backwards, a rewritten history).
    case authority(String)
    /// The checkpoint offered for installation is not valid.
    case badCheckpoint(String)
    case io(StorageIOError)

    public var ruleID: String {
        switch self {
        case .damaged(let d): return d.ruleID
        case .walFailed: return RuleID.storageWalFailed.rawValue
        case .closed: return RuleID.storageClosed.rawValue
        case .notWritable: return RuleID.storageWriteNotWritable.rawValue
        case .preconditionFailed: return RuleID.storageWritePreconditionFailed.rawValue
        case .invalidKey: return RuleID.storageWriteInvalidKey.rawValue
        case .valueTooLarge: return RuleID.storageWriteValueTooLarge.rawValue
        case .emptyTransaction: return RuleID.storageWriteEmptyTransaction.rawValue
        case .replicationGap: return RuleID.storageReplicaLsnGap.rawValue
        case .epochLineage: return RuleID.storageReplicaEpochLineage.rawValue
        case .authority: return RuleID.storageAuthorityRefused.rawValue
        case .badCheckpoint: return RuleID.storageCheckpointInvalid.rawValue
        case .io: return RuleID.storageIo.rawValue
        }
    }

    public var description: String {
        let text: String
        switch self {
        case .damaged(let d): return d.description
        case .walFailed(let why): text = "the WAL failed earlier (\(why)); it refuses writes until the data directory is reopened and recovered"
        case .closed: text = "the storage engine is closed"
        case .notWritable(let role, let following, let epoch):
            text = "this node does not accept writes: role \(role.rawValue), epoch \(epoch)" + (following.map { ", following \($0)" } ?? "")
        case .preconditionFailed(let key): text = "precondition on key \"\(key)\" did not hold; nothing was written"
        case .invalidKey(let key, let reason): text = "invalid key \"\(key.prefix(64))\": \(reason)"
        case .valueTooLarge(let key, let bytes): text = "value for \"\(key.prefix(64))\" is \(bytes) bytes; the limit is \(WALFormat.valueBytesMax)"
        case .emptyTransaction: text = "a transaction must contain at least one put or delete"
        case .replicationGap(let expected, let received): text = "replicated record has LSN \(received); this log expects \(expected)"
        case .epochLineage(let why): text = why
        case .authority(let why): text = why
        case .badCheckpoint(let why): text = why
        case .io(let e): text = e.description
        }
        return "[\(ruleID)] \(text)"
    }
}
