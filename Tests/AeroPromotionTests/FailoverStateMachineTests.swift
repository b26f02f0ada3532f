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
        case .detachingCandidate, .committingAuthority, .promoted, .failed:
            _ = machine.decided(engine.decide(failoverFacts), facts: failoverFacts)
            if kind == .committingAuthority || kind == .promoted { _ = machine.candidateDetached(durableLSN: LSN(1200)) }
            if kind == .promoted { _ = machine.authorityCommitted(epoch: Epoch(8)) }
            if kind == .failed { _ = machine.stepFailed("detach timed out") }
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
        "committingAuthority+authorityCommitted", "committingAuthority+stepFailed",
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
            #expect(machine.apply(.candidateCaughtUp(durableLSN: LSN(1212))) == .commitAuthority(b, epoch: Epoch(8)))
            #expect(machine.stateKind == .committingAuthority, "P5")
            guard case .reportFailed(let failure) = behind.candidateCaughtUp(durableLSN: LSN(1211)) else {
                Issue.record("a candidate short of the final position must not commit")
                return
            }
            #expect(failure.step == .awaitingCatchUp && !failure.authorityOutcomeUnknown)
            #expect(behind.stateKind == .failed)
        case (.detachingCandidate, .candidateDetached):
            var short = machine
            #expect(machine.apply(.candidateDetached(durableLSN: LSN(1200))) == .commitAuthority(b, epoch: Epoch(8)))
            #expect(machine.stateKind == .committingAuthority, "P6")
            guard case .reportFailed(let failure) = short.candidateDetached(durableLSN: LSN(1199)) else {
                Issue.record("a candidate below the required position must not commit")
                return
            }
            #expect(failure.message.contains("below 1200"))
            #expect(short.stateKind == .failed)
        case (.committingAuthority, .authorityCommitted):
            #expect(machine.apply(.authorityCommitted(epoch: Epoch(8))) == .reportPromoted(b, epoch: Epoch(8)))
            guard case .promoted(let plan) = machine.state else {
                Issue.record("not promoted")
                return
            }
            #expect(plan.fromEpoch == Epoch(7) && plan.toEpoch == Epoch(8), "P4")
            #expect(plan.factsDigest == fixtures.failoverFacts.digest, "P1")
        case (_, .stepFailed):
            guard case .reportFailed(let failure) = machine.apply(.stepFailed("timed out")) else {
                Issue.record("stepFailed must report a failure")
                return
            }
            #expect(machine.stateKind == .failed, "P3")
            #expect(failure.step.rawValue == stateKind.rawValue)
            #expect(failure.authorityOutcomeUnknown == (stateKind == .committingAuthority))
            if stateKind == .committingAuthority { #expect(failure.message.contains("inspect its authority file")) }
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
        guard case .promoting(let plan, .detachingCandidate, _) = machine.state else {
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
        guard case .reportFailed(let failure) = shrunk.primaryFenced(finalLSN: LSN(1209)) else {
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
            _ = machine.stepFailed("too early")
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
