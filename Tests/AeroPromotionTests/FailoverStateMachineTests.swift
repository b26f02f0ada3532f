import AeroCore
import AeroPromotion
import Testing

typealias Machine = FailoverStateMachine

/// Decisions and machines in every state, built from the example facts.
struct MachineFixtures {
    let failoverFacts: FactsDocument
    let switchoverFacts: FactsDocument
    let refusedFacts: FactsDocument
    let engine = PromotionEngine(policies: [])

    init() throws {
        failoverFacts = try exampleFacts("failover-ok")
        switchoverFacts = try exampleFacts("switchover-ok")
        refusedFacts = try exampleFacts("failover-async-refused")
    }

    static let failoverRequest = PromotionRequest(kind: .failover, candidate: "b", requestedBy: "ops-oncall")
    static let switchoverRequest = PromotionRequest(kind: .switchover, candidate: "b", requestedBy: "ops-oncall")

    /// A machine brought to `kind` through legal events only.
    func machine(in kind: Machine.StateKind) -> Machine {
        let switchover = kind == .fencingPrimary || kind == .awaitingCatchUp
        var machine = Machine(request: switchover ? Self.switchoverRequest : Self.failoverRequest)
        if kind == .requested { return machine }
        _ = machine.validate()
        switch kind {
        case .requested, .validating:
            break
        case .denied:
            _ = machine.decided(engine.decide(refusedFacts), facts: refusedFacts)
        case .fencingPrimary:
            _ = machine.decided(engine.decide(switchoverFacts), facts: switchoverFacts)
        case .awaitingCatchUp:
            _ = machine.decided(engine.decide(switchoverFacts), facts: switchoverFacts)
            _ = machine.primaryFenced(finalLSN: LSN(1212))
        case .detachingCandidate, .claimingEpoch, .committingAuthority, .verifyingService, .promoted, .undoing, .failed:
            _ = machine.decided(engine.decide(failoverFacts), facts: failoverFacts)
            if kind == .failed {
                _ = machine.stepFailed(rule: "PROMOTE-STEP-1", "detach timed out")
                break
            }
            if kind == .detachingCandidate { break }
            _ = machine.candidateDetached(durableLSN: LSN(1200))
            if kind == .undoing { _ = machine.claimRefused("c did not answer", granted: ["b"]) }
            if [.committingAuthority, .verifyingService, .promoted].contains(kind) { _ = machine.epochClaimed(granted: ["b", "c"]) }
            if [.verifyingService, .promoted].contains(kind) { _ = machine.authorityCommitted(epoch: Epoch(8)) }
            if kind == .promoted { _ = machine.serviceVerified("acknowledged") }
        }
        #expect(machine.stateKind == kind)
        return machine
    }
}

@Suite struct FailoverStateMachineTests {
    let fixtures: MachineFixtures

    init() throws { fixtures = try MachineFixtures() }

    /// The legal pairs, written out independently of the implementation's table.
    static let expectedLegal: Set<String> = [
        "requested+validate",
        "validating+decided", "validating+factsUnusable",
        "fencingPrimary+primaryFenced", "fencingPrimary+stepFailed",
        "awaitingCatchUp+candidateCaughtUp", "awaitingCatchUp+stepFailed",
        "detachingCandidate+candidateDetached", "detachingCandidate+stepFailed",
        "claimingEpoch+epochClaimed", "claimingEpoch+claimRefused", "claimingEpoch+stepFailed",
        "committingAuthority+authorityCommitted", "committingAuthority+stepFailed",
        "verifyingService+serviceVerified", "verifyingService+serviceUnmet",
        "undoing+undone",
    ]

    /// Every (state, event) pair: legal pairs are applied and their outcome checked; illegal
    /// pairs are refused by the table, which `apply` consults before its preconditionFailure.
    @Test(arguments: Machine.StateKind.allCases)
    func everyStateEventPair(state: Machine.StateKind) throws {
        for event in Machine.EventKind.allCases {
            let legal = Self.expectedLegal.contains("\(state.rawValue)+\(event.rawValue)")
            #expect(Machine.canApply(event, to: state) == legal, "\(state) + \(event)")
            if legal { try checkLegal(state, event) }
        }
        let terminal = [Machine.StateKind.denied, .promoted, .failed].contains(state)
        #expect(fixtures.machine(in: state).isTerminal == terminal, "P2")
    }

    func checkLegal(_ stateKind: Machine.StateKind, _ event: Machine.EventKind) throws {
        var machine = fixtures.machine(in: stateKind)
        let b: NodeID = "b"
        switch (stateKind, event) {
        case (.requested, .validate):
            #expect(machine.validate() == .captureFactsAndDecide(MachineFixtures.failoverRequest))
            #expect(machine.stateKind == .validating)
        case (.validating, .decided):
            let decision = fixtures.engine.decide(fixtures.failoverFacts)
            #expect(machine.apply(.decided(decision, fixtures.failoverFacts)) == .detachCandidate(b))
            #expect(machine.stateKind == .detachingCandidate)
            var refused = fixtures.machine(in: .validating)
            let refusal = fixtures.engine.decide(fixtures.refusedFacts)
            #expect(refused.decided(refusal, facts: fixtures.refusedFacts) == .reportDenied(.refused(refusal)))
            #expect(refused.state == .denied(MachineFixtures.failoverRequest, .refused(refusal)))
            var switchover = Machine(request: MachineFixtures.switchoverRequest)
            _ = switchover.validate()
            let allowed = fixtures.engine.decide(fixtures.switchoverFacts)
            #expect(switchover.decided(allowed, facts: fixtures.switchoverFacts) == .fencePrimary("a", epoch: Epoch(7)))
            #expect(switchover.stateKind == .fencingPrimary)
        case (.validating, .factsUnusable):
            #expect(machine.apply(.factsUnusable("b did not answer")) == .reportDenied(.factsUnusable("b did not answer")))
            #expect(machine.stateKind == .denied)
        case (.fencingPrimary, .primaryFenced):
            #expect(machine.apply(.primaryFenced(finalLSN: LSN(1212))) == .awaitCatchUp(b, lsn: LSN(1212)))
            #expect(machine.stateKind == .awaitingCatchUp)
        case (.awaitingCatchUp, .candidateCaughtUp):
            var behind = machine
            // switchover-ok: the set is {b, c} with quorum 2, so a switchover needs 1 of it (P13).
            #expect(machine.apply(.candidateCaughtUp(durableLSN: LSN(1212))) == .claimEpoch(epoch: Epoch(8), set: ["b", "c"], needed: 1, fencedPrimary: "a"))
            #expect(machine.stateKind == .claimingEpoch, "P5")
            // Short of the final position: the fence is lifted (undo), then the attempt fails.
            #expect(behind.candidateCaughtUp(durableLSN: LSN(1211)) == .undo(.unfencePrimary("a", epoch: Epoch(7))))
            guard case .reportFailed(let failure) = behind.undone() else {
                Issue.record("a candidate short of the final position must not commit")
                return
            }
            #expect(failure.step == .awaitingCatchUp && failure.rule == "PROMOTE-CATCHUP-1" && !failure.authorityOutcomeUnknown)
            #expect(behind.stateKind == .failed)
        case (.detachingCandidate, .candidateDetached):
            var short = machine
            // failover-ok: quorum 2 of {b, c}: a failover needs both promises (P13).
            #expect(machine.apply(.candidateDetached(durableLSN: LSN(1200))) == .claimEpoch(epoch: Epoch(8), set: ["b", "c"], needed: 2, fencedPrimary: nil))
            #expect(machine.stateKind == .claimingEpoch, "P6")
            #expect(short.candidateDetached(durableLSN: LSN(1199)) == .undo(.resumeFollowing(primary: "a")))
            guard case .reportFailed(let failure) = short.undone() else {
                Issue.record("a candidate below the required position must not commit")
                return
            }
            #expect(failure.message.contains("below 1200"))
            #expect(short.stateKind == .failed)
        case (.claimingEpoch, .epochClaimed):
            var few = machine
            #expect(machine.apply(.epochClaimed(granted: ["c", "b"])) == .commitAuthority(b, epoch: Epoch(8)))
            #expect(machine.stateKind == .committingAuthority, "P13")
            // Reported won with fewer promises than P13 needs: a driver bug, failed and undone.
            #expect(few.epochClaimed(granted: ["b"]) == .undo(.releasePromises(epoch: Epoch(8), granted: ["b"])))
            #expect(few.undone() == .undo(.resumeFollowing(primary: "a")))
            guard case .reportFailed(let failure) = few.undone() else {
                Issue.record("a claim short of P13 must not commit")
                return
            }
            #expect(failure.rule == "PROMOTE-CLAIM-1")
        case (.claimingEpoch, .claimRefused):
            // Undone newest first: the promises, then the detach (P3).
            #expect(machine.apply(.claimRefused("c refused", granted: ["b"])) == .undo(.releasePromises(epoch: Epoch(8), granted: ["b"])))
            #expect(machine.stateKind == .undoing)
            #expect(machine.undone() == .undo(.resumeFollowing(primary: "a")))
            guard case .reportFailed(let failure) = machine.undone() else {
                Issue.record("a refused claim must fail")
                return
            }
            #expect(failure.step == .claimingEpoch && failure.rule == "PROMOTE-CLAIM-1" && failure.message == "c refused")
        case (.committingAuthority, .authorityCommitted):
            #expect(machine.apply(.authorityCommitted(epoch: Epoch(8))) == .verifyService(b, epoch: Epoch(8)))
            #expect(machine.stateKind == .verifyingService)
        case (.verifyingService, .serviceVerified):
            #expect(machine.apply(.serviceVerified("acked by c")) == .reportPromoted(b, epoch: Epoch(8), .verified("acked by c")))
            guard case .promoted(let plan, _) = machine.state else {
                Issue.record("not promoted")
                return
            }
            #expect(plan.fromEpoch == Epoch(7) && plan.toEpoch == Epoch(8), "P4")
            #expect(plan.documentDigest == fixtures.failoverFacts.digest, "P1")
        case (.verifyingService, .serviceUnmet):
            #expect(machine.apply(.serviceUnmet(rule: "REPL-QUORUM-1", message: "c is down"))
                    == .reportPromoted(b, epoch: Epoch(8), .unverified(rule: "REPL-QUORUM-1", message: "c is down")), "P14")
            #expect(machine.stateKind == .promoted, "P3: past the commit point it is promoted, never failed")
        case (.undoing, .undone):
            #expect(machine.apply(.undone) == .undo(.resumeFollowing(primary: "a")))
            guard case .reportFailed = machine.apply(.undone) else {
                Issue.record("the last undo reports the failure")
                return
            }
            #expect(machine.stateKind == .failed)
        case (_, .stepFailed):
            let action = machine.apply(.stepFailed(rule: "PROMOTE-STEP-1", message: "timed out"))
            // Every change made so far is undone before the failure is reported (P3).
            var failure: PromotionFailure?
            var next = action
            var undone: [UndoAction] = []
            while failure == nil {
                switch next {
                case .undo(let undo):
                    undone.append(undo)
                    next = machine.undone()
                case .reportFailed(let reported):
                    failure = reported
                default:
                    Issue.record("unexpected \(next)")
                    return
                }
            }
            let expected: [UndoAction] = switch stateKind {
            case .awaitingCatchUp: [.unfencePrimary("a", epoch: Epoch(7))]
            case .claimingEpoch: [.resumeFollowing(primary: "a")]
            default: []  // fencing and detaching changed nothing yet; committing undoes nothing
            }
            #expect(undone == expected, "P3")
            #expect(machine.stateKind == .failed, "P3")
            #expect(failure!.step.rawValue == stateKind.rawValue)
            #expect(failure!.authorityOutcomeUnknown == (stateKind == .committingAuthority))
            if stateKind == .committingAuthority { #expect(failure!.message.contains("inspect its authority file")) }
        default:
            Issue.record("legal pair \(stateKind)+\(event) has no check")
        }
    }

    @Test func failoverPlanRequiresEveryAcknowledgedPosition() throws {
        // A peer heard 1200 acknowledged, equal to the candidate's durable position (DUR-1
        // allows equality); the plan carries it as the bar for the detached candidate.
        let facts = try example("failover-ok", [("nodes.2.primary_acked_lsn", .integer(1200))])
        var machine = Machine(request: MachineFixtures.failoverRequest)
        _ = machine.validate()
        _ = machine.decided(fixtures.engine.decide(facts), facts: facts)
        guard case .promoting(let plan, .detachingCandidate, _, _) = machine.state else {
            Issue.record("not promoting")
            return
        }
        #expect(plan.requiredLSN == LSN(1200))
        #expect(plan.oldPrimary == "a")
    }

    @Test func switchoverWaitsForTheFencedPrimarysFinalPosition() throws {
        var machine = fixtures.machine(in: .fencingPrimary)
        #expect(machine.primaryFenced(finalLSN: LSN(1210)) == .awaitCatchUp("b", lsn: LSN(1210)))
        // The primary was durable to 1210 at decision: a lower final position is lost records.
        var shrunk = fixtures.machine(in: .fencingPrimary)
        #expect(shrunk.primaryFenced(finalLSN: LSN(1209)) == .undo(.unfencePrimary("a", epoch: Epoch(7))), "P3: the fence is lifted")
        guard case .reportFailed(let failure) = shrunk.undone() else {
            Issue.record("a final position below the decided one must fail the attempt")
            return
        }
        #expect(failure.step == .fencingPrimary)
        #expect(failure.message.contains("below its durable position 1210"))
        #expect(shrunk.stateKind == .failed)
    }

    // Illegal pairs trap: a sample run in child processes (the table covers every pair above).

    @Test func validatingTwiceTraps() async {
        await #expect(processExitsWith: .failure) {
            var machine = FailoverStateMachine(request: PromotionRequest(kind: .failover, candidate: "b", requestedBy: nil))
            _ = machine.validate()
            _ = machine.validate()
        }
    }

    @Test func stepFailedBeforeValidationTraps() async {
        await #expect(processExitsWith: .failure) {
            var machine = FailoverStateMachine(request: PromotionRequest(kind: .failover, candidate: "b", requestedBy: nil))
            _ = machine.stepFailed(rule: "PROMOTE-STEP-1", "too early")
        }
    }

    @Test func committingBeforeDecisionTraps() async {
        await #expect(processExitsWith: .failure) {
            var machine = FailoverStateMachine(request: PromotionRequest(kind: .switchover, candidate: "b", requestedBy: nil))
            _ = machine.validate()
            _ = machine.authorityCommitted(epoch: Epoch(8))
        }
    }
}
