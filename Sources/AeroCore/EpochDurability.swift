// EpochDurability.swift — what "acknowledged" means in one epoch, and the arithmetic that
// follows from it. Pure functions of small values; the storage engine records the value in
// the epoch's history entry, the primary's commit path waits for it, and the promotion rules
// and the epoch claim reason with it.
//
// Terms
//   eligible set   the members configured to acknowledge writes (`sync_replicas`).
//   set S(E)       the members that acknowledge in epoch E: the eligible set less E's primary
//                  (a primary never acknowledges for itself; it is durable anyway).
//   quorum k(E)    how many members of S(E) must hold a write durably before the primary
//                  acknowledges it: `sync_quorum`, or |S(E)| ("all of them") when not set.
//                  Like PostgreSQL's `synchronous_standby_names = 'ANY k (…)'`.
//
// The one derivation rule (D1): S(E+1) = eligible \ {primary of E+1}, k(E+1) = sync_quorum or
// |S(E+1)|. Never "every member" as a fallback: a configuration whose set would be empty, or
// smaller than k, for the new primary is refused at decision time (DUR-3) and at start when
// the numbers cannot work for any primary.
//
// Invariants (checked by `init`, a programmer error otherwise)
//   Q1. 1 <= quorum <= |set|, and the set has no duplicate and is sorted (one canonical value:
//       two nodes that derived the same durability compare equal).
//   Q2. The primary of the epoch is not in its set.
//
// Why a failover can be safe (R + W > N, as CloudNativePG's failoverQuorum argues): every write
// acknowledged in epoch E is durable on k members of S. If r members of S are reachable and
// r >= |S| - k + 1, every k-subset of S meets the reachable ones, so at least one reachable
// member holds each acknowledged write; a candidate at least as advanced as all of them holds
// every acknowledged write (`failoverReachableMin`).
//
// Why two promotions cannot both win epoch E+1 (`promisesNeeded`): a failover collects
// promises from q_f = max(|S| - k + 1, floor(|S|/2) + 1) members of S(E) — two such sets
// meet, and the meeting member promised E+1 to only one candidate. A switchover collects the
// fenced primary's promise (two switchovers both need it) and q_s = |S| - q_f + 1 members of
// S(E), so that it meets every failover's q_f members (q_f + q_s > |S|). A candidate in S
// counts its own promise. docs/failover.md writes the argument out (invariants C1–C6).

public struct EpochDurability: Hashable, Sendable, CustomStringConvertible {
    /// How many members of `set` must hold a write durably before it is acknowledged.
    public let quorum: Int
    /// The members that may acknowledge, sorted by id.
    public let set: [NodeID]

    public init(quorum: Int, set: [NodeID]) {
        let sorted = set.sorted()
        precondition(Set(sorted).count == sorted.count, "Q1: duplicate member in a durability set")
        precondition(quorum >= 1 && quorum <= sorted.count, "Q1: quorum \(quorum) outside 1...\(sorted.count)")
        self.quorum = quorum
        self.set = sorted
    }

    /// "ANY 1 (n2, n3)".
    public var description: String {
        "ANY \(quorum) (\(set.map(\.rawValue).joined(separator: ", ")))"
    }

    /// D1: the durability of an epoch whose primary is `primary`, or why there is none.
    public static func derive(eligible: [NodeID], quorum: Int?, primary: NodeID) -> Result<EpochDurability, DurabilityProblem> {
        let set = Array(Set(eligible).subtracting([primary])).sorted()
        guard !set.isEmpty else { return .failure(.noAcknowledger(primary: primary, eligible: eligible.sorted())) }
        let k = quorum ?? set.count
        guard k >= 1, k <= set.count else {
            return .failure(.quorumTooLarge(primary: primary, quorum: k, set: set))
        }
        return .success(EpochDurability(quorum: k, set: set))
    }

    /// How many members of the set must be reachable for a failover to be provably safe.
    public var failoverReachableMin: Int { self.set.count - quorum + 1 }

    /// The promises of members of this epoch's set a promotion to the next epoch needs
    /// (the candidate's own counted when it is in the set; a switchover's fenced primary is
    /// needed besides and is not in the set).
    public func promisesNeeded(_ kind: PromotionKind) -> Int {
        let failover = max(set.count - quorum + 1, set.count / 2 + 1)
        switch kind {
        case .failover: return failover
        case .switchover: return set.count - failover + 1
        }
    }

    /// The JSON form used in the authority file, the facts, status and write answers.
    public var json: JSONValue {
        .object(["quorum": .integer(Int64(quorum)), "set": .array(set.map { .string($0.rawValue) })])
    }

    /// Parses `json` (the form above); nil when malformed or breaking Q1.
    public init?(json: JSONValue) {
        guard let k = json["quorum"]?.integerValue, let members = json["set"]?.arrayValue else { return nil }
        var ids: [NodeID] = []
        for member in members {
            guard let id = member.stringValue, !id.isEmpty else { return nil }
            ids.append(NodeID(id))
        }
        guard Set(ids).count == ids.count, k >= 1, Int(k) <= ids.count else { return nil }
        self.init(quorum: Int(k), set: ids)
    }
}

/// Why a configuration gives an epoch no durability.
public enum DurabilityProblem: Error, Hashable, Sendable, CustomStringConvertible {
    /// The eligible set less the primary is empty: no member could acknowledge.
    case noAcknowledger(primary: NodeID, eligible: [NodeID])
    /// `sync_quorum` is larger than the set the primary would have.
    case quorumTooLarge(primary: NodeID, quorum: Int, set: [NodeID])

    public var description: String {
        switch self {
        case .noAcknowledger(let primary, let eligible):
            return "with \(primary) as primary, sync_replicas [\(eligible.map(\.rawValue).joined(separator: ", "))] leaves no other member to acknowledge writes"
        case .quorumTooLarge(let primary, let quorum, let set):
            return "with \(primary) as primary, sync_quorum \(quorum) is more than the \(set.count) member(s) that can acknowledge (\(set.map(\.rawValue).joined(separator: ", ")))"
        }
    }
}
