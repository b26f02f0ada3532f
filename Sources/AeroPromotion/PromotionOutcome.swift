// PromotionOutcome.swift — how a promotion request ended, as the operator sees it: one value
// carrying the outcome, the rule that decided it, the CLI's exit code and the HTTP status.
//
// Exit codes are the CLI contract (docs/operations.md): 0 allowed or promoted with service,
// 1 refused, failed, or promoted without service yet, 2 unusable request. The `outcome` string
// is the JSON field `aerodb promote` prints and the decision history records.

public enum PromotionOutcome: Sendable, Equatable {
    /// A dry run the engine allowed.
    case allowed
    /// Refused before anything changed: by the engine (`rule` nil: the decision's reasons say
    /// which rules and policies) or by a check of its own (PROMOTE-BUSY-1, PROMOTE-DIGEST-1).
    case refused(rule: String?)
    /// The candidate is primary of the new epoch and its first record was acknowledged under
    /// the epoch's durability.
    case promoted
    /// The candidate is primary of the new epoch, but service could not be verified: its quorum
    /// cannot be met yet (REPL-QUORUM-1: writes are refused until what the message names is
    /// done) or its first record was not acknowledged in time (PROMOTE-VERIFY-1). The
    /// authority moved either way: inspect the new primary, do not promote again.
    case promotedWithoutService(rule: String)
    /// A step failed; every change before the commit point was undone (P3).
    case failed(step: PromotionStep, rule: String)
    /// The request could not be decided (PROMOTE-POLICY-1, PROMOTE-FACTS-1, PROMOTE-RECORD-1).
    case unusable(rule: String)

    /// The JSON `outcome` field.
    public var name: String {
        switch self {
        case .allowed: "allowed"
        case .refused: "refused"
        case .promoted: "promoted"
        case .promotedWithoutService: "promoted_without_service"
        case .failed: "failed"
        case .unusable: "unusable"
        }
    }

    /// The rule id the answer cites, when one decided it.
    public var rule: String? {
        switch self {
        case .allowed, .promoted: nil
        case .refused(let rule): rule
        case .promotedWithoutService(let rule), .failed(_, let rule), .unusable(let rule): rule
        }
    }

    public var exitCode: Int {
        switch self {
        case .allowed, .promoted: 0
        case .refused, .promotedWithoutService, .failed: 1
        case .unusable: 2
        }
    }

    public var httpStatus: Int {
        switch self {
        case .allowed, .promoted: 200
        case .refused: 409
        case .promotedWithoutService, .failed: 503
        case .unusable: 422
        }
    }
}
