// ReplicationRule.swift — the stable ids of the rules by which a peer session refuses.
//
// Each id appears in a `refuse` message on the wire, in the event journal, and in
// docs/replication.md with the test that trips it. Ids are never reused for another meaning.

public enum ReplicationRule {
    /// A peer at a lower epoch than ours: we never accept its records nor follow it.
    public static let staleEpoch = "REPL-STALE-EPOCH"
    /// The peer answered with another node id than the primary this replica follows.
    public static let wrongPrimary = "REPL-WRONG-PRIMARY"
    /// A node id that is not a configured member (or is the primary itself).
    public static let unknownPeer = "REPL-UNKNOWN-PEER"
    /// A shipped record's LSN is not exactly the next one.
    public static let lsnGap = "REPL-LSN-GAP"
    /// A shipped record's epoch is below the previous record's, zero, or above its sender's.
    public static let epochRegression = "REPL-EPOCH-REGRESSION"
    /// The replica's WAL is not a prefix of the primary's history (records past the primary's
    /// durable end, or its last record belongs to another epoch than the primary's history says).
    public static let diverged = "REPL-DIVERGED"
    /// One side's epoch history is not a prefix of the other's (the primary's must extend the
    /// replica's: history is append-only).
    public static let historyMismatch = "REPL-HISTORY-MISMATCH"
    /// A message that is not allowed in the session's state, or an impossible acknowledgement.
    public static let protocolViolation = "REPL-PROTOCOL"

    /// Every rule id above, for documentation checks.
    public static let all: [String] = [
        staleEpoch, wrongPrimary, unknownPeer, lsnGap, epochRegression, diverged, historyMismatch,
        protocolViolation,
    ]
}
