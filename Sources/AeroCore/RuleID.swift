// RuleID.swift — the one registry of refusal ids: every stable id with which AeroDB refuses,
// whatever refuses (a native promotion rule, the promotion coordinator, a peer session, the HTTP
// API, the re-seed routes, the storage engine).
//
// Code that refuses names a case here, never a string literal, so an id cannot be misspelt and
// a new one cannot be added without a row in docs/rule-ids.md: RuleIDRegistryTests checks the
// table against `allCases` in both directions and that each row's trip test asserts its id.
// Ids are stable: never renamed, never reused for another meaning; a new situation gets a new id.

/// A stable refusal id. The raw value is what clients, journals and docs see.
public enum RuleID: String, CaseIterable, Sendable, CustomStringConvertible {
    // Native promotion rules (docs/promotion-rules.md): each can fail a promotion decision.
    case req1 = "REQ-1"
    case live1 = "LIVE-1"
    case role1 = "ROLE-1"
    case epoch1 = "EPOCH-1"
    case wal1 = "WAL-1"
    case dur1 = "DUR-1"
    case dur2 = "DUR-2"
    case dur3 = "DUR-3"
    case policy1 = "POLICY-1"
    case fence1 = "FENCE-1"
    // Live promotion: the coordinator, its steps and the peer admin routes (docs/failover.md).
    case promoteBusy1 = "PROMOTE-BUSY-1"
    case promotePolicy1 = "PROMOTE-POLICY-1"
    case promoteFacts1 = "PROMOTE-FACTS-1"
    case promoteRecord1 = "PROMOTE-RECORD-1"
    case promoteDigest1 = "PROMOTE-DIGEST-1"
    case promoteStep1 = "PROMOTE-STEP-1"
    case promoteCatchup1 = "PROMOTE-CATCHUP-1"
    case promoteClaim1 = "PROMOTE-CLAIM-1"
    case promoteVerify1 = "PROMOTE-VERIFY-1"
    case promoteFence1 = "PROMOTE-FENCE-1"
    case promoteUnfence1 = "PROMOTE-UNFENCE-1"
    case promoteFollow1 = "PROMOTE-FOLLOW-1"
    case promoteDiverged1 = "PROMOTE-DIVERGED-1"
    // Replication safety: peer sessions refuse with these on the wire (docs/replication.md).
    case replStaleEpoch = "REPL-STALE-EPOCH"
    case replWrongPrimary = "REPL-WRONG-PRIMARY"
    case replUnknownPeer = "REPL-UNKNOWN-PEER"
    case replLsnGap = "REPL-LSN-GAP"
    case replEpochRegression = "REPL-EPOCH-REGRESSION"
    case replDiverged = "REPL-DIVERGED"
    case replHistoryMismatch = "REPL-HISTORY-MISMATCH"
    case replProtocol = "REPL-PROTOCOL"
    // Replication safety: the HTTP API refuses with these, journaled (docs/server.md).
    case replWriteOnReplica = "REPL-WRITE-ON-REPLICA"
    case replSyncTimeout = "REPL-SYNC-TIMEOUT"
    case replQuorum1 = "REPL-QUORUM-1"
    case replStaleRead = "REPL-STALE-READ"
    case replCommitBacklog = "REPL-COMMIT-BACKLOG"
    case replFenced = "REPL-FENCED"
    case replShuttingDown = "REPL-SHUTTING-DOWN"
    // Request errors of the HTTP API, not journaled (docs/server.md).
    case reqInvalidKey = "REQ-INVALID-KEY"
    case reqValueTooLarge = "REQ-VALUE-TOO-LARGE"
    case reqBadRequest = "REQ-BAD-REQUEST"
    case reqTxnTooLarge = "REQ-TXN-TOO-LARGE"
    case reqPreconditionFailed = "REQ-PRECONDITION-FAILED"
    case reqNotFound = "REQ-NOT-FOUND"
    case nodeStorageFailed = "NODE-STORAGE-FAILED"
    // Re-seed source routes (docs/replication.md, "Re-seeding").
    case reseedNotPrimary = "RESEED-NOT-PRIMARY"
    case reseedCheckpointGone = "RESEED-CHECKPOINT-GONE"
    // Storage (docs/storage.md, docs/invariants.md "Storage"): recovery damage and engine refusals.
    case storageRecoveryCorruptRecord = "storage.recovery.corrupt-record"
    case storageRecoveryBadSegmentHeader = "storage.recovery.bad-segment-header"
    case storageRecoveryLsnGap = "storage.recovery.lsn-gap"
    case storageRecoveryEpochBackwards = "storage.recovery.epoch-backwards"
    case storageRecoveryCorruptCheckpoint = "storage.recovery.corrupt-checkpoint"
    case storageRecoveryAuthorityBehindWal = "storage.recovery.authority-behind-wal"
    case storageWalFailed = "storage.wal.failed"
    case storageClosed = "storage.closed"
    case storageWriteNotWritable = "storage.write.not-writable"
    case storageWritePreconditionFailed = "storage.write.precondition-failed"
    case storageWriteInvalidKey = "storage.write.invalid-key"
    case storageWriteValueTooLarge = "storage.write.value-too-large"
    case storageWriteEmptyTransaction = "storage.write.empty-transaction"
    case storageReplicaLsnGap = "storage.replica.lsn-gap"
    case storageReplicaEpochLineage = "storage.replica.epoch-lineage"
    case storageAuthorityRefused = "storage.authority.refused"
    case storageCheckpointInvalid = "storage.checkpoint.invalid"
    case storageIo = "storage.io"

    public var description: String { rawValue }
}
