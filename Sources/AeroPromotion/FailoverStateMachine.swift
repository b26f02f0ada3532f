// FailoverStateMachine.swift — one promotion attempt, from request to an explicit end.
//
// A pure struct: events in, actions out, no I/O and no clock. The live cluster performs each
// action and feeds back what happened as the next event; time limits on steps are the
// driver's, reported here as `stepFailed`. Nothing is retried: every attempt ends in exactly
// one terminal state, and a new attempt is a new request.
//
//   requested ──validate──▶ validating ──decided(refuse) | factsUnusable──▶ DENIED
//                               │ decided(allow)
//                               ▼
//      switchover:  fencingPrimary ──primaryFenced(final)──▶ awaitingCatchUp(final) ─┐
//      failover:    detachingCandidate ──candidateDetached(durable)──────────────────┤
//                                                                                     ▼
//                   claimingEpoch ──epochClaimed──▶ committingAuthority ──authorityCommitted──▶
//                   verifyingService ──serviceVerified | serviceUnmet──▶ PROMOTED
//      any step before the commit ──stepFailed | claimRefused──▶ undoing ──undone…──▶ FAILED
//      committingAuthority ──stepFailed──▶ FAILED (the record's fate unknown: nothing undone)
//
// Transitions, each made by one function: `validate()` requested→validating;
// `decided(_:facts:)` validating→denied|fencingPrimary|detachingCandidate;
// `factsUnusable(_:)` validating→denied; `primaryFenced(finalLSN:)`
// fencingPrimary→awaitingCatchUp|undoing; `candidateCaughtUp(durableLSN:)`
// awaitingCatchUp→claimingEpoch|undoing; `candidateDetached(durableLSN:)`
// detachingCandidate→claimingEpoch|undoing; `epochClaimed(granted:)`
// claimingEpoch→committingAuthority|undoing; `claimRefused(_:granted:)` claimingEpoch→undoing;
// `authorityCommitted(epoch:)` committingAuthority→verifyingService; `serviceVerified(_:)` and
// `serviceUnmet(_:)` verifyingService→promoted; `stepFailed(rule:_:)` fencing, catching up,
// detaching, claiming→undoing, committing→failed; `undone()` undoing→undoing|failed.
// `apply(_:)` dispatches an `Event` to them. Anything else is `preconditionFailure`;
// `canApply(_:to:)` answers the same question as data, for tests and drivers.
//
// Invariants (docs/invariants.md, "Promotion"; `checkInvariants()` runs after every transition):
//   P1. Promoting is entered only from an allowing Decision computed from exactly the facts
//       the plan was made from (same digest), for exactly the request that was made.
//   P2. DENIED, PROMOTED and FAILED are terminal: no event applies to them.
//   P3. No partial success. The only commit point is the candidate's durable authority record
//       for the new epoch; PROMOTED is entered only after it is reported written, and every
//       other way out of promoting is FAILED. Before the commit point every step that changed
//       the cluster is undone by an action of this machine, newest first: promises gathered
//       are released (`releasePromises`), a fenced primary is unfenced for this attempt
//       (`unfencePrimary`), a detached candidate follows its primary again
//       (`resumeFollowing`); FAILED is entered after the last one. A failure while committing
//       leaves the record's fate unknown and undoes nothing (`authorityOutcomeUnknown`): the
//       candidate's authority file must be inspected before any new request.
//   P4. The new epoch is exactly the decision's `cluster.epoch` + 1.
//   P5. Switchover: the commit is requested only after the old primary is fenced, reported a
//       final position at or above its durable position at decision, the candidate reported
//       itself durable to that final position, and the epoch was claimed.
//   P6. Failover: the commit is requested only after the candidate stopped following the
//       lost primary, reported itself durable at or above everything DUR-1 compared it with
//       (`PromotionRules.failoverRequiredLSN`), and the epoch was claimed.
//   P13. The commit is requested only after `promisesNeeded` members of the epoch's
//       acknowledging set (and, for a switchover, the fenced primary) promised the new epoch to
//       this candidate (EpochDurability.swift, docs/failover.md C1–C6): two attempts for one
//       epoch cannot both reach the commit.
//   P14. PROMOTED says whether service was verified: `serviceVerified` (the epoch's first
//       record acknowledged under the new epoch's durability) or `serviceUnmet` (the authority
//       moved, but the quorum cannot be met yet — writes are refused with REPL-QUORUM-1 — or
//       the record was not acknowledged in time, PROMOTE-VERIFY-1).
import AeroCore

/// What the operator asked for, as the state machine needs it.
public struct PromotionRequest: Sendable, Equatable {
    public let kind: PromotionKind
    public let candidate: NodeID
    public let requestedBy: String?

    public init(kind: PromotionKind, candidate: NodeID, requestedBy: String?) {
        self.kind = kind
        self.candidate = candidate
        self.requestedBy = requestedBy
    }
}

/// What an allowed decision commits the attempt to.
public struct PromotionPlan: Sendable, Equatable {
    public let request: PromotionRequest
    public let oldPrimary: NodeID
    public let fromEpoch: Epoch
    /// Always `fromEpoch.successor` (P4).
    public let toEpoch: Epoch
    /// Failover: the candidate must be durable to at least this once detached (P6).
    /// Switchover: the candidate's durable position at decision time (the final position of
    /// the fenced primary raises the bar, see `awaitingCatchUp`).
    public let requiredLSN: LSN
    /// Switchover: the primary's durable position at decision time. Its final position once
    /// fenced can only be at or above it; below it, fsynced records went missing.
    public let primaryDurableLSN: LSN?
    /// The current epoch's acknowledging set and quorum (nil in async mode): whose promises
    /// the claim needs (P13).
    public let durability: EpochDurability?
    /// SHA-256 of the facts document the plan was made from (Decision.documentDigest).
    public let documentDigest: String

    /// P13: the promises of the set's members this attempt needs (0 in async mode, where no
    /// failover is allowed and a switchover is exclusive through the fenced primary alone).
    public var promisesNeeded: Int { durability?.promisesNeeded(request.kind) ?? 0 }
}

/// Why an attempt was denied before anything was changed.
public enum Denial: Sendable, Equatable {
    /// The engine refused; the decision carries every reason.
    case refused(Decision)
    /// The facts could not be captured or were unusable: safety cannot be proven.
    case factsUnusable(String)
}

/// Where a promoting attempt is.
public enum PromotionStep: String, Sendable, Equatable, CaseIterable {
    case fencingPrimary, awaitingCatchUp, detachingCandidate, claimingEpoch, committingAuthority, verifyingService
}

/// A change an attempt made before its commit point, undone if the attempt fails (P3).
public enum UndoAction: Sendable, Equatable {
    /// Release the promises of `epoch` these members gave this candidate.
    case releasePromises(epoch: Epoch, granted: [NodeID])
    /// Lift this attempt's fence of the old primary (of `epoch`).
    case unfencePrimary(NodeID, epoch: Epoch)
    /// The candidate follows `primary` again.
    case resumeFollowing(primary: NodeID)
}

/// Why a promoting attempt failed (P3).
public struct PromotionFailure: Sendable, Equatable {
    public let step: PromotionStep
    /// The stable id of the step's refusal (PROMOTE-CATCHUP-1, PROMOTE-CLAIM-1, …).
    public let rule: String
    public let message: String
    /// True only for a failure while committing: the authority record may or may not be on
    /// the candidate's disk.
    public let authorityOutcomeUnknown: Bool
}

/// How a promoted attempt left service (P14).
public enum PromotedService: Sendable, Equatable {
    /// The epoch's first record was acknowledged under its durability; the message says by whom.
    case verified(String)
    /// Not verified: the quorum cannot be met yet (REPL-QUORUM-1 refuses writes until it is) or
    /// the first record was not acknowledged in time (PROMOTE-VERIFY-1); the message says what
    /// restores service.
    case unverified(rule: String, message: String)
}

public struct FailoverStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case requested(PromotionRequest)
        case validating(PromotionRequest)
        case denied(PromotionRequest, Denial)
        /// `target` is set in `awaitingCatchUp`: the fenced primary's final position. `undo`
        /// holds the changes made so far, oldest first.
        case promoting(PromotionPlan, PromotionStep, target: LSN?, undo: [UndoAction])
        /// Undoing `remaining` (next first) before reporting `failure`.
        case undoing(PromotionPlan, PromotionFailure, remaining: [UndoAction])
        case promoted(PromotionPlan, PromotedService)
        case failed(PromotionPlan, PromotionFailure)
    }

    public enum Event: Sendable, Equatable {
        case validate
        case decided(Decision, FactsDocument)
        case factsUnusable(String)
        case primaryFenced(finalLSN: LSN)
        case candidateCaughtUp(durableLSN: LSN)
        case candidateDetached(durableLSN: LSN)
        case epochClaimed(granted: [NodeID])
        case claimRefused(String, granted: [NodeID])
        case authorityCommitted(epoch: Epoch)
        case serviceVerified(String)
        case serviceUnmet(rule: String, message: String)
        case stepFailed(rule: String, message: String)
        case undone
    }

    /// What the driver must do next. Exactly one action per transition.
    public enum Action: Sendable, Equatable {
        /// Capture facts for the request, run the engine, feed back `decided` or `factsUnusable`.
        case captureFactsAndDecide(PromotionRequest)
        case reportDenied(Denial)
        /// Demote the old primary: it stops acknowledging writes in `epoch` and reports the
        /// final durable position as `primaryFenced`.
        case fencePrimary(NodeID, epoch: Epoch)
        /// Wait until the candidate is durable to `lsn`, then feed back `candidateCaughtUp`.
        case awaitCatchUp(NodeID, lsn: LSN)
        /// Make the candidate stop following the lost primary and report its durable position.
        case detachCandidate(NodeID)
        /// Collect promises of `epoch` for the candidate: its own, the fenced primary's
        /// (switchover) and at least `needed` of `set`. Feed back `epochClaimed` with everyone
        /// who promised, or `claimRefused` with why and who promised anyway.
        case claimEpoch(epoch: Epoch, set: [NodeID], needed: Int, fencedPrimary: NodeID?)
        /// Write the candidate's durable authority record: primary of `epoch`.
        case commitAuthority(NodeID, epoch: Epoch)
        /// Re-point the other members, then wait (bounded) until the epoch's first record is
        /// acknowledged under its durability; feed back `serviceVerified` or `serviceUnmet`.
        case verifyService(NodeID, epoch: Epoch)
        case reportPromoted(NodeID, epoch: Epoch, PromotedService)
        /// Undo one change (P3), then feed back `undone`.
        case undo(UndoAction)
        case reportFailed(PromotionFailure)
    }

    /// Cases of `State`, with the promoting steps spelled out: the rows of the transition table.
    public enum StateKind: String, Sendable, CaseIterable {
        case requested, validating, denied
        case fencingPrimary, awaitingCatchUp, detachingCandidate, claimingEpoch, committingAuthority, verifyingService
        case undoing, promoted, failed
    }

    /// Cases of `Event`: the columns of the transition table.
    public enum EventKind: String, Sendable, CaseIterable {
        case validate, decided, factsUnusable, primaryFenced, candidateCaughtUp, candidateDetached
        case epochClaimed, claimRefused, authorityCommitted, serviceVerified, serviceUnmet, stepFailed, undone
    }

    public private(set) var state: State

    public init(request: PromotionRequest) {
        state = .requested(request)
    }

    // MARK: The transition table

    /// The legal (state, event) pairs. Every pair not listed is a programmer error.
    static let legal: [StateKind: Set<EventKind>] = [
        .requested: [.validate],
        .validating: [.decided, .factsUnusable],
        .denied: [],
        .fencingPrimary: [.primaryFenced, .stepFailed],
        .awaitingCatchUp: [.candidateCaughtUp, .stepFailed],
        .detachingCandidate: [.candidateDetached, .stepFailed],
        .claimingEpoch: [.epochClaimed, .claimRefused, .stepFailed],
        .committingAuthority: [.authorityCommitted, .stepFailed],
        .verifyingService: [.serviceVerified, .serviceUnmet],
        .undoing: [.undone],
        .promoted: [],
        .failed: [],
    ]

    public static func canApply(_ event: EventKind, to state: StateKind) -> Bool {
        legal[state]!.contains(event)
    }

    public var stateKind: StateKind {
        switch state {
        case .requested: .requested
        case .validating: .validating
        case .denied: .denied
        case .promoting(_, let step, _, _): StateKind(rawValue: step.rawValue)!
        case .undoing: .undoing
        case .promoted: .promoted
        case .failed: .failed
        }
    }

    public var isTerminal: Bool { Self.legal[stateKind]!.isEmpty }

    // MARK: Transitions

    /// Applies `event`; illegal pairs are `preconditionFailure`.
    public mutating func apply(_ event: Event) -> Action {
        switch event {
        case .validate: return validate()
        case .decided(let decision, let facts): return decided(decision, facts: facts)
        case .factsUnusable(let message): return factsUnusable(message)
        case .primaryFenced(let lsn): return primaryFenced(finalLSN: lsn)
        case .candidateCaughtUp(let lsn): return candidateCaughtUp(durableLSN: lsn)
        case .candidateDetached(let lsn): return candidateDetached(durableLSN: lsn)
        case .epochClaimed(let granted): return epochClaimed(granted: granted)
        case .claimRefused(let message, let granted): return claimRefused(message, granted: granted)
        case .authorityCommitted(let epoch): return authorityCommitted(epoch: epoch)
        case .serviceVerified(let message): return serviceVerified(message)
        case .serviceUnmet(let rule, let message): return serviceUnmet(rule: rule, message: message)
        case .stepFailed(let rule, let message): return stepFailed(rule: rule, message)
        case .undone: return undone()
        }
    }

    public mutating func validate() -> Action {
        guard case .requested(let request) = state else { invalid(.validate) }
        state = .validating(request)
        checkInvariants()
        return .captureFactsAndDecide(request)
    }

    /// `decision` must have been computed from `facts`, and `facts` captured for this request.
    public mutating func decided(_ decision: Decision, facts: FactsDocument) -> Action {
        guard case .validating(let request) = state else { invalid(.decided) }
        precondition(decision.documentDigest == facts.digest, "the decision was computed from other facts")
        precondition(facts.request.promotionKind == request.kind && facts.request.candidate == request.candidate,
                     "the facts were captured for another request")
        guard decision.allowed else {
            let denial = Denial.refused(decision)
            state = .denied(request, denial)
            checkInvariants()
            return .reportDenied(denial)
        }
        // An allowing decision passed REQ-1 and LIVE-1, so the candidate is present and reported.
        let candidate = facts.candidate!
        let required = request.kind == .failover ? PromotionRules.failoverRequiredLSN(facts) : candidate.durableLSN!
        let plan = PromotionPlan(
            request: request, oldPrimary: facts.cluster.primary, fromEpoch: facts.cluster.epoch,
            toEpoch: facts.cluster.epoch.successor, requiredLSN: required,
            primaryDurableLSN: request.kind == .switchover ? facts.primary.durableLSN : nil,
            durability: facts.cluster.commitMode == .sync ? facts.cluster.durability : nil,
            documentDigest: facts.digest)
        switch request.kind {
        case .switchover:
            state = .promoting(plan, .fencingPrimary, target: nil, undo: [])
            checkInvariants()
            return .fencePrimary(plan.oldPrimary, epoch: plan.fromEpoch)
        case .failover:
            state = .promoting(plan, .detachingCandidate, target: nil, undo: [])
            checkInvariants()
            return .detachCandidate(request.candidate)
        }
    }

    public mutating func factsUnusable(_ message: String) -> Action {
        guard case .validating(let request) = state else { invalid(.factsUnusable) }
        let denial = Denial.factsUnusable(message)
        state = .denied(request, denial)
        checkInvariants()
        return .reportDenied(denial)
    }

    public mutating func primaryFenced(finalLSN: LSN) -> Action {
        guard case .promoting(let plan, .fencingPrimary, _, let undo) = state else { invalid(.primaryFenced) }
        let undoNow = undo + [.unfencePrimary(plan.oldPrimary, epoch: plan.fromEpoch)]
        if let decided = plan.primaryDurableLSN, finalLSN < decided {
            return fail(plan, .fencingPrimary, rule: RuleID.promoteStep1.rawValue, undo: undoNow,
                        "\(plan.oldPrimary) reported its final position \(finalLSN) below its durable position \(decided) at decision: positions never go backwards, so its log lost fsynced records")
        }
        let target = max(finalLSN, plan.requiredLSN)
        state = .promoting(plan, .awaitingCatchUp, target: target, undo: undoNow)
        checkInvariants()
        return .awaitCatchUp(plan.request.candidate, lsn: target)
    }

    public mutating func candidateCaughtUp(durableLSN: LSN) -> Action {
        guard case .promoting(let plan, .awaitingCatchUp, let target?, let undo) = state else { invalid(.candidateCaughtUp) }
        guard durableLSN >= target else {
            return fail(plan, .awaitingCatchUp, rule: RuleID.promoteCatchup1.rawValue, undo: undo,
                        "\(plan.request.candidate) reported itself caught up at \(durableLSN), below the fenced primary's final position \(target)")
        }
        return claim(plan, undo: undo)
    }

    public mutating func candidateDetached(durableLSN: LSN) -> Action {
        guard case .promoting(let plan, .detachingCandidate, _, let undo) = state else { invalid(.candidateDetached) }
        let undoNow = undo + [.resumeFollowing(primary: plan.oldPrimary)]
        guard durableLSN >= plan.requiredLSN else {
            return fail(plan, .detachingCandidate, rule: RuleID.promoteStep1.rawValue, undo: undoNow,
                        "\(plan.request.candidate) detached durable to \(durableLSN), below \(plan.requiredLSN) which the decision required: acknowledged writes would be lost")
        }
        return claim(plan, undo: undoNow)
    }

    /// `granted`: every member that promised the epoch to this candidate, itself included.
    public mutating func epochClaimed(granted: [NodeID]) -> Action {
        guard case .promoting(let plan, .claimingEpoch, _, let undo) = state else { invalid(.epochClaimed) }
        let undoNow = undo + [.releasePromises(epoch: plan.toEpoch, granted: granted.sorted())]
        let fromSet = Set(granted).intersection(plan.durability?.set ?? []).count
        let needsPrimary = plan.request.kind == .switchover
        guard granted.contains(plan.request.candidate), fromSet >= plan.promisesNeeded,
              !needsPrimary || granted.contains(plan.oldPrimary) else {
            return fail(plan, .claimingEpoch, rule: RuleID.promoteClaim1.rawValue, undo: undoNow,
                        "the claim of epoch \(plan.toEpoch) was reported won with promises from \(granted.map(\.rawValue).sorted().joined(separator: ", ")), fewer than P13 needs (\(plan.promisesNeeded) of the set\(needsPrimary ? " and \(plan.oldPrimary)" : ""))")
        }
        state = .promoting(plan, .committingAuthority, target: nil, undo: undoNow)
        checkInvariants()
        return .commitAuthority(plan.request.candidate, epoch: plan.toEpoch)
    }

    public mutating func claimRefused(_ message: String, granted: [NodeID]) -> Action {
        guard case .promoting(let plan, .claimingEpoch, _, let undo) = state else { invalid(.claimRefused) }
        let undoNow = granted.isEmpty ? undo : undo + [.releasePromises(epoch: plan.toEpoch, granted: granted.sorted())]
        return fail(plan, .claimingEpoch, rule: RuleID.promoteClaim1.rawValue, undo: undoNow, message)
    }

    public mutating func authorityCommitted(epoch: Epoch) -> Action {
        guard case .promoting(let plan, .committingAuthority, _, _) = state else { invalid(.authorityCommitted) }
        precondition(epoch == plan.toEpoch, "the driver committed epoch \(epoch), not the planned \(plan.toEpoch)")
        // Past the commit point nothing is undone (P3).
        state = .promoting(plan, .verifyingService, target: nil, undo: [])
        checkInvariants()
        return .verifyService(plan.request.candidate, epoch: plan.toEpoch)
    }

    public mutating func serviceVerified(_ message: String) -> Action {
        guard case .promoting(let plan, .verifyingService, _, _) = state else { invalid(.serviceVerified) }
        return promote(plan, .verified(message))
    }

    public mutating func serviceUnmet(rule: String, message: String) -> Action {
        guard case .promoting(let plan, .verifyingService, _, _) = state else { invalid(.serviceUnmet) }
        return promote(plan, .unverified(rule: rule, message: message))
    }

    public mutating func stepFailed(rule: String, _ message: String) -> Action {
        guard case .promoting(let plan, let step, _, let undo) = state, step != .verifyingService else { invalid(.stepFailed) }
        // A failure while committing undoes nothing: the record may be on disk (P3).
        return fail(plan, step, rule: rule, undo: step == .committingAuthority ? [] : undo, message)
    }

    public mutating func undone() -> Action {
        guard case .undoing(let plan, let failure, let remaining) = state else { invalid(.undone) }
        precondition(!remaining.isEmpty, "undoing with nothing left to undo")
        let rest = Array(remaining.dropFirst())
        if let next = rest.first {
            state = .undoing(plan, failure, remaining: rest)
            checkInvariants()
            return .undo(next)
        }
        state = .failed(plan, failure)
        checkInvariants()
        return .reportFailed(failure)
    }

    // MARK: Helpers

    mutating func claim(_ plan: PromotionPlan, undo: [UndoAction]) -> Action {
        state = .promoting(plan, .claimingEpoch, target: nil, undo: undo)
        checkInvariants()
        return .claimEpoch(epoch: plan.toEpoch, set: plan.durability?.set ?? [], needed: plan.promisesNeeded,
                           fencedPrimary: plan.request.kind == .switchover ? plan.oldPrimary : nil)
    }

    mutating func promote(_ plan: PromotionPlan, _ service: PromotedService) -> Action {
        state = .promoted(plan, service)
        checkInvariants()
        return .reportPromoted(plan.request.candidate, epoch: plan.toEpoch, service)
    }

    /// Fails the attempt at `step`: undoes `undo` newest first, then reports (P3).
    mutating func fail(_ plan: PromotionPlan, _ step: PromotionStep, rule: String, undo: [UndoAction], _ message: String) -> Action {
        let unknown = step == .committingAuthority
        let failure = PromotionFailure(
            step: step, rule: rule,
            message: unknown
                ? "\(message); the authority record for epoch \(plan.toEpoch) may or may not be on \(plan.request.candidate): inspect its authority file before any new request"
                : message,
            authorityOutcomeUnknown: unknown)
        let remaining = Array(undo.reversed())
        if let first = remaining.first {
            state = .undoing(plan, failure, remaining: remaining)
            checkInvariants()
            return .undo(first)
        }
        state = .failed(plan, failure)
        checkInvariants()
        return .reportFailed(failure)
    }

    func invalid(_ event: EventKind) -> Never {
        precondition(!Self.canApply(event, to: stateKind), "transition table and code disagree")
        preconditionFailure("invalid event \(event) in state \(stateKind)")
    }

    /// Asserts P1, P3 (shape of the undo list) and P4 on the current state (P2, P5–P14 hold by
    /// the shape of the transitions above and are tested pair by pair).
    func checkInvariants() {
        switch state {
        case .promoting(let plan, let step, let target, let undo):
            precondition(plan.toEpoch == plan.fromEpoch.successor, "P4")
            precondition((step == .awaitingCatchUp) == (target != nil), "a target exists exactly while awaiting catch-up")
            let switchoverStep = step == .fencingPrimary || step == .awaitingCatchUp
            precondition(!switchoverStep || plan.request.kind == .switchover, "steps follow the request kind")
            precondition(step != .detachingCandidate || plan.request.kind == .failover, "steps follow the request kind")
            precondition(step != .verifyingService || undo.isEmpty, "P3: nothing is undone past the commit point")
            precondition(undo.count <= 3, "at most a fence, a detach and a claim to undo")
        case .undoing(let plan, let failure, let remaining):
            precondition(plan.toEpoch == plan.fromEpoch.successor, "P4")
            precondition(!remaining.isEmpty && !failure.authorityOutcomeUnknown, "P3: undo only before the commit point")
        case .promoted(let plan, _), .failed(let plan, _):
            precondition(plan.toEpoch == plan.fromEpoch.successor, "P4")
        case .requested, .validating, .denied:
            break
        }
    }
}
