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
//                                  committingAuthority ──authorityCommitted──▶ PROMOTED
//      any promoting step ──stepFailed, or a reported position below what is needed──▶ FAILED
//
// Transitions, each made by one function: `validate()` requested→validating;
// `decided(_:facts:)` validating→denied|fencingPrimary|detachingCandidate;
// `factsUnusable(_:)` validating→denied; `primaryFenced(finalLSN:)`
// fencingPrimary→awaitingCatchUp|failed; `candidateCaughtUp(durableLSN:)`
// awaitingCatchUp→committingAuthority|failed; `candidateDetached(durableLSN:)`
// detachingCandidate→committingAuthority|failed; `authorityCommitted(epoch:)`
// committingAuthority→promoted; `stepFailed(_:)` any promoting step→failed.
// `apply(_:)` dispatches an `Event` to them. Anything else is `preconditionFailure`;
// `canApply(_:to:)` answers the same question as data, for tests and drivers.
//
// Invariants (docs/invariants.md, "Promotion"; `checkInvariants()` runs after every transition):
//   P1. Promoting is entered only from an allowing Decision computed from exactly the facts
//       the plan was made from (same digest), for exactly the request that was made.
//   P2. DENIED, PROMOTED and FAILED are terminal: no event applies to them.
//   P3. No partial success. The only commit point is the candidate's durable authority record
//       for the new epoch; PROMOTED is entered only when it is reported written, and every
//       other way out of promoting is FAILED. FAILED means this attempt did not transfer
//       authority; its explanation names the step. Steps already done are not undone (a
//       fenced primary stays fenced, a detached candidate stays detached: undoing them would
//       be an unexplained authority change), so the cluster may be left without a writer,
//       which is safe; the operator decides the next request. A failure while committing
//       leaves the record's fate unknown, and the failure says so (`authorityOutcomeUnknown`):
//       the candidate's authority file must be inspected before any new request.
//   P4. The new epoch is exactly the decision's `cluster.epoch` + 1.
//   P5. Switchover: the commit is requested only after the old primary is fenced, reported a
//       final position at or above its durable position at decision, and the candidate
//       reported itself durable to that final position.
//   P6. Failover: the commit is requested only after the candidate stopped following the
//       lost primary and reported itself durable at or above every acknowledged position
//       known to the decision (and at or above its own durable position then: positions never
//       go backwards).
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
    /// Failover: the candidate must be durable to at least this once detached (P6): the
    /// highest of its own durable position and every acknowledged position in the facts.
    /// Switchover: the candidate's durable position at decision time (the final position of
    /// the fenced primary raises the bar, see `awaitingCatchUp`).
    public let requiredLSN: LSN
    /// Switchover: the primary's durable position at decision time. Its final position once
    /// fenced can only be at or above it; below it, fsynced records went missing.
    public let primaryDurableLSN: LSN?
    public let factsDigest: String
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
    case fencingPrimary, awaitingCatchUp, detachingCandidate, committingAuthority
}

/// Why a promoting attempt failed (P3).
public struct PromotionFailure: Sendable, Equatable {
    public let step: PromotionStep
    public let message: String
    /// True only for a failure while committing: the authority record may or may not be on
    /// the candidate's disk.
    public let authorityOutcomeUnknown: Bool
}

public struct FailoverStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case requested(PromotionRequest)
        case validating(PromotionRequest)
        case denied(PromotionRequest, Denial)
        /// `target` is set in `awaitingCatchUp`: the fenced primary's final position.
        case promoting(PromotionPlan, PromotionStep, target: LSN?)
        case promoted(PromotionPlan)
        case failed(PromotionPlan, PromotionFailure)
    }

    public enum Event: Sendable, Equatable {
        case validate
        case decided(Decision, FactsDocument)
        case factsUnusable(String)
        case primaryFenced(finalLSN: LSN)
        case candidateCaughtUp(durableLSN: LSN)
        case candidateDetached(durableLSN: LSN)
        case authorityCommitted(epoch: Epoch)
        case stepFailed(String)
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
        /// Write the candidate's durable authority record: primary of `epoch`.
        case commitAuthority(NodeID, epoch: Epoch)
        case reportPromoted(NodeID, epoch: Epoch)
        case reportFailed(PromotionFailure)
    }

    /// Cases of `State`, with the promoting steps spelled out: the rows of the transition table.
    public enum StateKind: String, Sendable, CaseIterable {
        case requested, validating, denied
        case fencingPrimary, awaitingCatchUp, detachingCandidate, committingAuthority
        case promoted, failed
    }

    /// Cases of `Event`: the columns of the transition table.
    public enum EventKind: String, Sendable, CaseIterable {
        case validate, decided, factsUnusable, primaryFenced, candidateCaughtUp, candidateDetached
        case authorityCommitted, stepFailed
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
        .committingAuthority: [.authorityCommitted, .stepFailed],
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
        case .promoting(_, .fencingPrimary, _): .fencingPrimary
        case .promoting(_, .awaitingCatchUp, _): .awaitingCatchUp
        case .promoting(_, .detachingCandidate, _): .detachingCandidate
        case .promoting(_, .committingAuthority, _): .committingAuthority
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
        case .authorityCommitted(let epoch): return authorityCommitted(epoch: epoch)
        case .stepFailed(let message): return stepFailed(message)
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
        precondition(decision.factsDigest == facts.digest, "the decision was computed from other facts")
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
        var required = candidate.durableLSN!
        if request.kind == .failover {
            for node in facts.nodes {
                for lsn in [node.ackedLSN, node.primaryAckedLSN].compactMap({ $0 }) where lsn > required { required = lsn }
            }
        }
        let plan = PromotionPlan(
            request: request, oldPrimary: facts.cluster.primary, fromEpoch: facts.cluster.epoch,
            toEpoch: facts.cluster.epoch.successor, requiredLSN: required,
            primaryDurableLSN: request.kind == .switchover ? facts.primary.durableLSN : nil,
            factsDigest: facts.digest)
        switch request.kind {
        case .switchover:
            state = .promoting(plan, .fencingPrimary, target: nil)
            checkInvariants()
            return .fencePrimary(plan.oldPrimary, epoch: plan.fromEpoch)
        case .failover:
            state = .promoting(plan, .detachingCandidate, target: nil)
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
        guard case .promoting(let plan, .fencingPrimary, _) = state else { invalid(.primaryFenced) }
        if let decided = plan.primaryDurableLSN, finalLSN < decided {
            return fail(plan, .fencingPrimary,
                        "\(plan.oldPrimary) reported its final position \(finalLSN) below its durable position \(decided) at decision: positions never go backwards, so its log lost fsynced records")
        }
        let target = max(finalLSN, plan.requiredLSN)
        state = .promoting(plan, .awaitingCatchUp, target: target)
        checkInvariants()
        return .awaitCatchUp(plan.request.candidate, lsn: target)
    }

    public mutating func candidateCaughtUp(durableLSN: LSN) -> Action {
        guard case .promoting(let plan, .awaitingCatchUp, let target?) = state else { invalid(.candidateCaughtUp) }
        guard durableLSN >= target else {
            return fail(plan, .awaitingCatchUp,
                        "\(plan.request.candidate) reported itself caught up at \(durableLSN), below the fenced primary's final position \(target)")
        }
        return commit(plan)
    }

    public mutating func candidateDetached(durableLSN: LSN) -> Action {
        guard case .promoting(let plan, .detachingCandidate, _) = state else { invalid(.candidateDetached) }
        guard durableLSN >= plan.requiredLSN else {
            return fail(plan, .detachingCandidate,
                        "\(plan.request.candidate) detached durable to \(durableLSN), below \(plan.requiredLSN) which the decision required: acknowledged writes would be lost")
        }
        return commit(plan)
    }

    public mutating func authorityCommitted(epoch: Epoch) -> Action {
        guard case .promoting(let plan, .committingAuthority, _) = state else { invalid(.authorityCommitted) }
        precondition(epoch == plan.toEpoch, "the driver committed epoch \(epoch), not the planned \(plan.toEpoch)")
        state = .promoted(plan)
        checkInvariants()
        return .reportPromoted(plan.request.candidate, epoch: plan.toEpoch)
    }

    public mutating func stepFailed(_ message: String) -> Action {
        guard case .promoting(let plan, let step, _) = state else { invalid(.stepFailed) }
        return fail(plan, step, message)
    }

    // MARK: Helpers

    mutating func commit(_ plan: PromotionPlan) -> Action {
        state = .promoting(plan, .committingAuthority, target: nil)
        checkInvariants()
        return .commitAuthority(plan.request.candidate, epoch: plan.toEpoch)
    }

    mutating func fail(_ plan: PromotionPlan, _ step: PromotionStep, _ message: String) -> Action {
        let unknown = step == .committingAuthority
        let failure = PromotionFailure(
            step: step,
            message: unknown
                ? "\(message); the authority record for epoch \(plan.toEpoch) may or may not be on \(plan.request.candidate): inspect its authority file before any new request"
                : message,
            authorityOutcomeUnknown: unknown)
        state = .failed(plan, failure)
        checkInvariants()
        return .reportFailed(failure)
    }

    func invalid(_ event: EventKind) -> Never {
        precondition(!Self.canApply(event, to: stateKind), "transition table and code disagree")
        preconditionFailure("invalid event \(event) in state \(stateKind)")
    }

    /// Asserts P1 and P4 on the current state (P2, P3, P5 and P6 hold by the shape of the
    /// transitions above and are tested pair by pair).
    func checkInvariants() {
        switch state {
        case .promoting(let plan, let step, let target):
            precondition(plan.toEpoch == plan.fromEpoch.successor, "P4")
            precondition((step == .awaitingCatchUp) == (target != nil), "a target exists exactly while awaiting catch-up")
            precondition((plan.request.kind == .switchover) == (step == .fencingPrimary || step == .awaitingCatchUp)
                         || step == .committingAuthority, "steps follow the request kind")
        case .promoted(let plan), .failed(let plan, _):
            precondition(plan.toEpoch == plan.fromEpoch.successor, "P4")
        case .requested, .validating, .denied:
            break
        }
    }
}
