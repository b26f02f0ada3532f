// Refusal.swift — the stable machine error codes of the HTTP API, and the refusal value that
// carries a rule id and its explanation to the client and into the event journal.
//
// Every error response of the HTTP API has this body (docs/server.md, "Errors"):
//
//     { "error": { "code": "REPL-WRITE-ON-REPLICA", "message": "<one line for a human>",
//                  "explanation": { "rule": "REPL-WRITE-ON-REPLICA", "summary": "...",
//                                   "facts": { ...the values the rule looked at... } } } }
//
// Codes are stable: a client may switch on them. They are never renamed or reused; a new
// situation gets a new code. Codes that start with `REPL-` are safety rules of replication and
// authority (a refusal): each is journaled with its explanation. The others are request
// errors (bad input, absent key) and are not journaled.

import AeroCore

/// The stable machine codes of the HTTP API, each one of the registry's ids (`RuleID`).
public enum ErrorCode: CaseIterable, Sendable {
    // Safety refusals (journaled).
    /// A write reached a replica. Only the primary of the current epoch accepts writes.
    case writeOnReplica
    /// A request or peer carried an epoch lower than this node's, or this node learned of a
    /// higher epoch and no longer accepts writes.
    case staleEpoch
    /// A sync-mode write was not stored durably by every sync replica within
    /// `timeouts.sync_commit_timeout_ms`. It is durable on the primary but NOT acknowledged.
    case syncTimeout
    /// Fewer members of the epoch's acknowledging set are connected than its quorum needs: the
    /// write cannot be acknowledged, so it is refused at once, before anything is written.
    case quorumUnmet
    /// A replica read with `min_lsn` could not reach that LSN within `timeouts.min_lsn_wait_ms`.
    case staleRead
    /// Too many writes are already waiting for their commit (`budgets.commit_waiters_max`).
    case commitBacklog
    /// The primary is fenced for a switchover and accepts no writes (issue 6).
    case fenced
    /// The node is shutting down: the request was not started, or its commit could not finish
    /// within `timeouts.shutdown_grace_ms`.
    case shuttingDown

    // Request errors (not journaled).
    /// The key is empty, too long (`budgets.key_bytes_max`) or not valid UTF-8.
    case invalidKey
    /// The body is larger than `budgets.value_bytes_max`.
    case valueTooLarge
    /// A request body or parameter is malformed (names the field).
    case badRequest
    /// `POST /v1/txn` has more than `budgets.txn_ops_max` operations.
    case txnTooLarge
    /// A compare-and-set precondition of `POST /v1/txn` did not hold; nothing was written.
    case preconditionFailed
    /// The key does not exist (GET, DELETE).
    case notFound
    /// The storage engine failed (I/O error, sticky WAL failure). The node needs attention.
    case storageFailed

    /// The registry id this code answers with (RuleID.swift).
    public var rule: RuleID {
        switch self {
        case .writeOnReplica: return .replWriteOnReplica
        case .staleEpoch: return .replStaleEpoch
        case .syncTimeout: return .replSyncTimeout
        case .quorumUnmet: return .replQuorum1
        case .staleRead: return .replStaleRead
        case .commitBacklog: return .replCommitBacklog
        case .fenced: return .replFenced
        case .shuttingDown: return .replShuttingDown
        case .invalidKey: return .reqInvalidKey
        case .valueTooLarge: return .reqValueTooLarge
        case .badRequest: return .reqBadRequest
        case .txnTooLarge: return .reqTxnTooLarge
        case .preconditionFailed: return .reqPreconditionFailed
        case .notFound: return .reqNotFound
        case .storageFailed: return .nodeStorageFailed
        }
    }

    /// The code as clients see it.
    public var rawValue: String { rule.rawValue }

    /// The HTTP status of a response with this code.
    public var httpStatus: Int {
        switch self {
        case .writeOnReplica, .staleEpoch: return 409
        case .syncTimeout, .quorumUnmet, .staleRead, .commitBacklog, .fenced, .shuttingDown: return 503
        case .invalidKey, .badRequest, .txnTooLarge: return 400
        case .valueTooLarge: return 413
        case .preconditionFailed: return 412
        case .notFound: return 404
        case .storageFailed: return 500
        }
    }

    /// Whether this code is a safety refusal, journaled with its explanation.
    public var isSafetyRule: Bool { rawValue.hasPrefix("REPL-") }
}

/// Why a rule refused, with the values it looked at: enough to check the decision by hand.
public struct Explanation: Equatable, Sendable {
    public var rule: String
    public var summary: String
    public var facts: [String: JSONValue]

    public init(rule: String, summary: String, facts: [String: JSONValue] = [:]) {
        self.rule = rule
        self.summary = summary
        self.facts = facts
    }

    public var json: JSONValue {
        .object(["rule": .string(rule), "summary": .string(summary), "facts": .object(facts)])
    }
}

/// An API error: a stable code, a human message and an explanation.
public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var explanation: Explanation

    public init(code: ErrorCode, message: String, explanation: Explanation) {
        self.code = code
        self.message = message
        self.explanation = explanation
    }

    /// The response body.
    public var json: JSONValue {
        .object(["error": .object([
            "code": .string(code.rawValue), "message": .string(message), "explanation": explanation.json,
        ])])
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

// Constructors for the safety refusals, so that every site that refuses says the same thing.
extension Refusal {
    public static func writeOnReplica(node: NodeID, primary: NodeID?, epoch: Epoch) -> Refusal {
        let following = primary.map { "primary \($0)" } ?? "no known primary"
        return Refusal(
            code: .writeOnReplica,
            message: "\(node) is a replica at epoch \(epoch) following \(following); send writes to the primary",
            explanation: Explanation(
                rule: ErrorCode.writeOnReplica.rawValue,
                summary: "only the primary of the current epoch accepts writes",
                facts: ["node": .string(node.rawValue), "role": .string("replica"), "epoch": .integer(Int64(epoch.rawValue)),
                        "following": primary.map { .string($0.rawValue) } ?? .null]))
    }

    /// `writtenLSN`: the write was already made (durable here, and in sync mode on its sync
    /// replicas) when the newer epoch was learned, so its outcome is unknown, not refused.
    public static func staleEpoch(node: NodeID, nodeEpoch: Epoch, seenEpoch: Epoch, seenFrom: String, writtenLSN: LSN? = nil) -> Refusal {
        var facts: [String: JSONValue] = ["node": .string(node.rawValue), "node_epoch": .integer(Int64(nodeEpoch.rawValue)),
                                          "seen_epoch": .integer(Int64(seenEpoch.rawValue)), "seen_from": .string(seenFrom)]
        var message = "\(node) is at epoch \(nodeEpoch) but \(seenFrom) is at epoch \(seenEpoch); this node accepts no writes of an old epoch"
        if let writtenLSN {
            facts["lsn"] = .integer(Int64(writtenLSN.rawValue))
            message += "; the write at LSN \(writtenLSN) was already made durable before that was learned: it is not acknowledged, "
                + "but it may still be committed and become visible"
        }
        return Refusal(
            code: .staleEpoch,
            message: message,
            explanation: Explanation(
                rule: ErrorCode.staleEpoch.rawValue,
                summary: "a node never accepts writes or records of an epoch lower than the highest it has seen",
                facts: facts))
    }

    public static func syncTimeout(lsn: LSN, epoch: Epoch, missing: [NodeID], timeoutMs: UInt64,
                                   durability: EpochDurability? = nil) -> Refusal {
        let names = missing.map(\.rawValue).joined(separator: ", ")
        let needed = durability.map { "epoch \(epoch) acknowledges with \($0); " } ?? ""
        return Refusal(
            code: .syncTimeout,
            message: "write at LSN \(lsn) is durable on the primary but not acknowledged: \(needed)member(s) \(names) "
                + "did not store it within \(timeoutMs) ms; it may still become visible",
            explanation: Explanation(
                rule: ErrorCode.syncTimeout.rawValue,
                summary: "commit_mode sync acknowledges a write only after the epoch's quorum of its acknowledging set stored it durably",
                facts: ["lsn": .integer(Int64(lsn.rawValue)), "epoch": .integer(Int64(epoch.rawValue)),
                        "missing_replicas": .array(missing.map { .string($0.rawValue) }),
                        "timeout_ms": .integer(Int64(timeoutMs))]))
    }

    /// REPL-QUORUM-1: `connected` of the set stream from this primary, fewer than the quorum.
    public static func quorumUnmet(node: NodeID, epoch: Epoch, durability: EpochDurability, connected: Set<NodeID>) -> Refusal {
        let absent = durability.set.filter { !connected.contains($0) }.map(\.rawValue)
        let have = connected.intersection(durability.set).map(\.rawValue).sorted()
        return Refusal(
            code: .quorumUnmet,
            message: "\(node) cannot acknowledge writes: epoch \(epoch) acknowledges with \(durability), and only \(have.count) of them "
                + "(\(have.isEmpty ? "none" : have.joined(separator: ", "))) replicate from it now; nothing was written. Restart or rejoin "
                + "\(absent.joined(separator: " or ")) (`aerodb rejoin`, or `aerodb reseed` if it diverged) so that \(durability.quorum) can acknowledge",
            explanation: Explanation(
                rule: ErrorCode.quorumUnmet.rawValue,
                summary: "a write is acknowledged only once the epoch's quorum of its acknowledging set stored it; with fewer of them connected than the quorum it could never be, so it is refused before it is written",
                facts: ["epoch": .integer(Int64(epoch.rawValue)), "durability": durability.json,
                        "connected": .array(have.map { .string($0) })]))
    }

    public static func staleRead(node: NodeID, minLSN: LSN, appliedLSN: LSN, waitedMs: UInt64) -> Refusal {
        Refusal(
            code: .staleRead,
            message: "\(node) has applied through LSN \(appliedLSN), below the requested min_lsn \(minLSN), after waiting \(waitedMs) ms",
            explanation: Explanation(
                rule: ErrorCode.staleRead.rawValue,
                summary: "a read with min_lsn is served only at a durable, applied LSN at or after min_lsn; never older data",
                facts: ["node": .string(node.rawValue), "min_lsn": .integer(Int64(minLSN.rawValue)),
                        "applied_lsn": .integer(Int64(appliedLSN.rawValue)), "waited_ms": .integer(Int64(waitedMs))]))
    }

    public static func commitBacklog(waiters: Int, max: Int) -> Refusal {
        Refusal(
            code: .commitBacklog,
            message: "\(waiters) writes are already waiting for their commit (limit \(max)); this write was not made",
            explanation: Explanation(
                rule: ErrorCode.commitBacklog.rawValue,
                summary: "the queue of writes waiting for their commit is bounded by budgets.commit_waiters_max",
                facts: ["waiters": .integer(Int64(waiters)), "commit_waiters_max": .integer(Int64(max))]))
    }

    /// A request error (not a safety rule): the code is its own rule.
    public static func request(_ code: ErrorCode, _ message: String, facts: [String: JSONValue] = [:]) -> Refusal {
        precondition(!code.isSafetyRule, "\(code.rawValue) is a safety rule; use its constructor")
        return Refusal(code: code, message: message, explanation: Explanation(rule: code.rawValue, summary: message, facts: facts))
    }
}
