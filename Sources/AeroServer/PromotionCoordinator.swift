// PromotionCoordinator.swift — the I/O driver of FailoverStateMachine on the candidate.
//
// `POST /v1/admin/promote` lands here. The coordinator feeds the state machine events and
// performs the actions it returns; the machine decides what happens next, the coordinator only
// does the I/O and reports what happened. Design rules:
//   1. One promotion at a time per node: a second request while one runs is refused at once
//      with PROMOTE-BUSY-1, never queued.
//   2. Every decision (dry run or not) is recorded in the DecisionLog with its facts document
//      and explanation before it is answered, and journaled (`promotion_decision`).
//   3. A real run given `expect_facts_digest` is refused with PROMOTE-DIGEST-1 when the digest
//      of what this decision depends on (DecisionDigest.swift: shape, reachability, labels,
//      policies, request and outcome; never positions) differs: the refusal names what changed
//      since the operator's dry run, read from the dry run's recorded basis.
//   4. Before any authority change, the candidate claims the new epoch: its own promise, the
//      fenced primary's (switchover) and `promisesNeeded` of the current epoch's acknowledging
//      set (EpochDurability.swift, PromotionClaim.swift C3; PROMOTE-CLAIM-1 otherwise).
//   5. The authority record (epoch+1, role primary, history entry starting at durable+1) is
//      written durably by `StorageEngine.promote` before the replication listener starts and
//      before the service takes writes; the epoch-start record it appends is the first write of
//      the new epoch, and the answer is sent only after it is durable.
//   6. Switchover: the old primary is fenced first (it promises the epoch too); if the candidate
//      does not reach its final LSN within `switchover_catch_up_timeout_ms`, the attempt fails
//      with PROMOTE-CATCHUP-1.
//   7. After the commit, every other member is told to follow (`POST /v1/admin/follow`); the
//      answer lists who was re-pointed, who refused (with why) and who did not answer. Then the
//      epoch's first record must be acknowledged under the new epoch's durability (bounded by
//      `sync_commit_timeout_ms`) before "promoted" is answered; when fewer members of the new
//      set than its quorum were re-pointed, the answer is `promoted_without_service` at once,
//      with REPL-QUORUM-1 and what restores it.
//   8. No retries: every step runs once, bounded; a failed step fails the attempt, and every
//      change made before the commit point is undone by the machine's undo actions (P3).
// The coordinator is a driver loop: FailoverStateMachine says what to do, `PromotionSteps`
// (PromotionSteps.swift) does it, the loop feeds the result back. Answers are built from one
// `PromotionOutcome`.
//   9. A request that cannot be decided changes nothing and answers "unusable" (exit code 2):
//      policy_dir unusable (PROMOTE-POLICY-1: missing, unreadable, no *.lua), facts that do
//      not form a valid facts document (PROMOTE-FACTS-1: a member answered a status this
//      build cannot read), or a decision that could not be recorded (PROMOTE-RECORD-1).
// A crash during an attempt is reported at the next start: `promotion-attempt.json` is written
// before the first change and removed at the end; finding it at start journals
// `promotion_interrupted` with the authority that is in force.

import AeroCore
import AeroPolicy
import AeroPromotion
import AeroStorage
import Foundation
import Logging
import NIOConcurrencyHelpers

final class PromotionCoordinator: Sendable {
    static let attemptFileName = "promotion-attempt.json"

    let service: KVService
    let roles: NodeRoles
    let decisions: DecisionLog
    let claims: PromotionClaimFile
    let metrics: PromotionMetrics
    let logger: Logger
    private let busy = NIOLockedValueBox(false)

    init(service: KVService, roles: NodeRoles, decisions: DecisionLog, claims: PromotionClaimFile, metrics: PromotionMetrics, logger: Logger) {
        self.service = service
        self.roles = roles
        self.decisions = decisions
        self.claims = claims
        self.metrics = metrics
        self.logger = logger
        reportInterruptedAttempt()
    }

    var config: ServerConfig { service.config }
    var engine: StorageEngine { service.engine }

    struct Request: Sendable {
        var kind: String
        var dryRun: Bool
        var expectFactsDigest: String?
        var requestedBy: String?
    }

    /// The answer: HTTP status and body. `exit_code` in the body is what `aerodb promote` exits with.
    func promote(_ request: Request) async -> APIResponse {
        guard tryAcquire() else {
            metrics.refused(rule: RuleID.promoteBusy1.rawValue)
            return answer(.refused(rule: RuleID.promoteBusy1.rawValue),
                          message: "\(config.id) is already running a promotion; this request was not queued: ask again once it ended", fields: [:])
        }
        defer { releaseBusy() }
        return await run(request)
    }

    /// Role changes on this node (a promotion, a re-pointing) run one at a time (rule 1).
    func tryAcquire() -> Bool {
        busy.withLockedValue { busy -> Bool in
            if busy { return false }
            busy = true
            return true
        }
    }

    func releaseBusy() {
        busy.withLockedValue { $0 = false }
    }

    private func run(_ request: Request) async -> APIResponse {
        var timings = PromotionTimings()
        let policies: [PolicySource]
        do {
            policies = try PolicySet.load(config)
        } catch {
            return unusable(RuleID.promotePolicy1.rawValue, "policy_dir is unusable, so no decision was made: \(error)")
        }
        let captured: PromotionFacts.Captured
        do {
            captured = try await PromotionFacts.capture(kind: request.kind, requestedBy: request.requestedBy, service: service)
        } catch {
            return unusable(RuleID.promoteFacts1.rawValue, "the captured facts are unusable, so no decision was made: \(error)")
        }
        let facts = captured.document
        timings.mark("facts")
        let decision = PromotionEngine(policies: policies, sandbox: PolicySandbox(budget: PolicySandbox.defaultBudget, isolation: .worker)).decide(facts)
        timings.mark("decide")
        // The one digest an operator approves (Decision.factsDigest); the document's is separate.
        let basis = decision.digestBasis
        let stateDigest = DecisionDigest.digest(basis)
        let digestMismatch = request.expectFactsDigest.map { $0 != stateDigest } ?? false
        // What changed, read before this decision is recorded (it would match nothing anyway).
        let approved = digestMismatch && !request.dryRun ? request.expectFactsDigest.flatMap(decisions.basis(forDigest:)) : nil
        let id: String
        do {
            id = try decisions.record(facts: facts, decision: decision, dryRun: request.dryRun, capturedMs: captured.capturedMs, extra: [
                "expect_facts_digest": request.expectFactsDigest.map { .string($0) } ?? .null,
                "policy_dir": config.policyDir.map { .string($0) } ?? .null,
            ])
            try service.journal.append("promotion_decision", fields: [
                "id": .string(id), "dry_run": .bool(request.dryRun), "allowed": .bool(decision.allowed),
                "kind": .string(request.kind), "facts_digest": .string(stateDigest), "document_digest": .string(decision.documentDigest),
                "reasons": .array(decision.reasons.map { .string($0.description) }),
            ], durability: .sync)
        } catch {
            return unusable(RuleID.promoteRecord1.rawValue, "the decision could not be recorded, so it is not acted on: \(error)")
        }
        timings.mark("record")
        metrics.decided(decision)
        var fields: [String: JSONValue] = [
            "decision_id": .string(id), "facts_digest": .string(stateDigest), "document_digest": .string(facts.digest), "decision": decision.json,
            "text": .string(decision.text), "explanation": .string(decision.explainText), "dry_run": .bool(request.dryRun),
        ]
        if digestMismatch, !request.dryRun {
            metrics.refused(rule: RuleID.promoteDigest1.rawValue)
            let message: String
            if let approved {
                let what = "changed: " + DecisionDigest.describe(DecisionDigest.changes(from: approved, to: basis))
                message = "the facts changed since the operator saw them: expected facts digest \(request.expectFactsDigest!), captured \(stateDigest) (decision \(id)); \(what); run a new dry run and check it"
            } else {
                // Not "changed": this node never recorded that digest (a dry run asked of another
                // candidate, a typo, or older than its last \(DecisionLog.listedMax) decisions).
                message = "the expected facts digest \(request.expectFactsDigest!) is not one \(config.id) recorded (a dry run on another candidate, or older than its last \(DecisionLog.listedMax) decisions), and the facts captured now have \(stateDigest) (decision \(id)); run a dry run on \(config.id) and check it"
            }
            fields["changed"] = approved.map { .array(DecisionDigest.changes(from: $0, to: basis).map(JSONValue.string)) } ?? .null
            journalOutcome("promotion_refused", id: id, rule: RuleID.promoteDigest1.rawValue, message: message, extra: ["steps_us": timings.json])
            return finish(id, .refused(rule: RuleID.promoteDigest1.rawValue), message: message, fields: fields)
        }
        guard let kind = PromotionKind(rawValue: request.kind) else {
            // REQ-1 refused it; there is no attempt to drive.
            return finish(id, decision.allowed ? .allowed : .refused(rule: nil), message: decision.text, fields: fields)
        }
        if request.dryRun {
            return finish(id, decision.allowed ? .allowed : .refused(rule: nil), message: decision.text, fields: fields)
        }
        var machine = FailoverStateMachine(request: PromotionRequest(kind: kind, candidate: config.id, requestedBy: request.requestedBy))
        _ = machine.validate()
        var action = machine.decided(decision, facts: facts)
        let steps = PromotionSteps(coordinator: self, attempt: id, fromEpoch: facts.cluster.epoch, oldPrimary: facts.cluster.primary)
        if decision.allowed { writeAttemptFile(toEpoch: facts.cluster.epoch.successor, decisionID: id) }
        defer { removeAttemptFile() }
        PromotionFaults.reached(.afterDecision)
        timings.mark("attempt_file")
        while true {
            switch action {
            case .captureFactsAndDecide:
                preconditionFailure("facts were captured before the machine was driven")
            case .reportDenied:
                journalOutcome("promotion_refused", id: id, rule: nil, message: decision.text, extra: ["steps_us": timings.json])
                return finish(id, .refused(rule: nil), message: decision.text, fields: fields)
            case .fencePrimary(let primary, let epoch):
                action = await steps.fence(primary, epoch: epoch, machine: &machine)
                timings.mark("fence")
            case .awaitCatchUp(_, let lsn):
                action = await steps.catchUp(lsn, machine: &machine)
                timings.mark("catch_up")
            case .detachCandidate:
                action = await steps.detach(machine: &machine)
                timings.mark("detach")
            case .claimEpoch(let epoch, let set, let needed, let fencedPrimary):
                action = await steps.claim(epoch, set: set, needed: needed, fencedPrimary: fencedPrimary, machine: &machine)
                timings.mark("claim")
            case .commitAuthority(_, let epoch):
                action = await steps.commit(epoch, fields: &fields, machine: &machine, timings: &timings)
            case .verifyService(_, let epoch):
                action = await steps.verifyService(epoch, fields: &fields, machine: &machine, timings: &timings)
            case .undo(let undo):
                await steps.undo(undo)
                timings.mark("undo")
                action = machine.undone()
            case .reportPromoted(_, let epoch, let service):
                PromotionFaults.reached(.afterRepoint)
                fields["epoch"] = .integer(Int64(epoch.rawValue))
                metrics.promoted()
                switch service {
                case .verified(let how):
                    fields["verified_write"] = .string(how)
                    await recordEpoch(epoch, kind: kind, decisionID: id, fields: &fields)
                    timings.mark("history_record")
                    let message = "\(config.id) is primary of epoch \(epoch); \(how)"
                    journalOutcome("promotion_promoted", id: id, rule: nil, message: message,
                                   extra: fields.filter { ["repointed", "unreachable", "repoint_refused"].contains($0.key) }.merging(["steps_us": timings.json]) { $1 })
                    return finish(id, .promoted, message: message, fields: fields)
                case .unverified(let rule, let why):
                    fields["verified_write"] = .null
                    let message = "\(config.id) is primary of epoch \(epoch), but cannot acknowledge writes yet: \(why)"
                    journalOutcome("promotion_promoted", id: id, rule: rule, message: message,
                                   extra: fields.filter { ["repointed", "unreachable", "repoint_refused"].contains($0.key) }.merging(["steps_us": timings.json]) { $1 })
                    return finish(id, .promotedWithoutService(rule: rule), message: message, fields: fields)
                }
            case .reportFailed(let failure):
                metrics.failed(step: failure.step.rawValue)
                let message = "step \(failure.step.rawValue): \(failure.message)"
                journalOutcome("promotion_failed", id: id, rule: failure.rule, message: message, extra: ["steps_us": timings.json])
                return finish(id, .failed(step: failure.step, rule: failure.rule), message: message, fields: fields)
            }
        }
    }

    /// How the epoch began, as replicated cluster state (EpochRecords.swift): what the facts'
    /// `cluster.history` and anti-flap policies read. A promotion whose record could not be
    /// written stands (it is verified); the answer and the journal say the record is missing.
    private func recordEpoch(_ epoch: Epoch, kind: PromotionKind, decisionID: String, fields: inout [String: JSONValue]) async {
        let written = await EpochRecords.write(service: service, epoch: epoch, kind: kind, decisionID: decisionID,
                                               startedAtMs: EventJournal.wallClockMs())
        if written.status == 200, let lsn = (try? JSONParser.parse(written.bodyText))?["lsn"] {
            fields["history_lsn"] = lsn
        } else {
            fields["history_lsn"] = .null
            logger.error("the epoch's history record was not written", metadata: ["epoch": "\(epoch)", "answer": "\(written.bodyText)"])
            // A failed journal append is counted by the journal (aerodb_journal_write_failures_total).
            _ = service.journal.record("epoch_record_failed", fields: ["epoch": .integer(Int64(epoch.rawValue)), "answer": .string(written.bodyText)],
                                       durability: .sync)
        }
    }

    // MARK: Policies, journal, answers

    /// Rule 9: a request that cannot be decided (PROMOTE-POLICY-1, PROMOTE-FACTS-1,
    /// PROMOTE-RECORD-1) changes nothing, is counted and journaled, and answers exit code 2.
    private func unusable(_ rule: String, _ message: String) -> APIResponse {
        metrics.refused(rule: rule)
        logger.error("promotion request unusable", metadata: ["rule": "\(rule)", "message": "\(message)"])
        journalOutcome("promotion_refused", id: nil, rule: rule, message: message)
        return answer(.unusable(rule: rule), message: message, fields: [:])
    }

    func journalOutcome(_ event: String, id: String?, rule: String?, message: String, extra: [String: JSONValue] = [:]) {
        var fields: [String: JSONValue] = ["id": id.map { .string($0) } ?? .null, "message": .string(message)]
        if let rule { fields["rule"] = .string(rule) }
        for (key, value) in extra { fields[key] = value }
        service.journal.record(event, fields: fields, durability: .sync)
    }

    /// The answer to a request whose decision is recorded: the outcome is written into the
    /// decision's record first (DecisionLog.recordOutcome), so the history shows what happened,
    /// not only what the engine decided.
    func finish(_ id: String, _ outcome: PromotionOutcome, message: String, fields: [String: JSONValue]) -> APIResponse {
        let dryRun = fields["dry_run"]?.boolValue ?? false
        if let problem = decisions.recordOutcome(id: id, DecisionLog.outcomeJSON(outcome, dryRun: dryRun, message: message)) {
            // The promotion's answer stands; the record keeps its decision without the outcome.
            logger.error("the decision's outcome was not recorded", metadata: ["id": "\(id)", "error": "\(problem)"])
            _ = service.journal.record("decision_outcome_not_recorded", fields: ["id": .string(id), "error": .string("\(problem)")], durability: .sync)
        }
        return answer(outcome, message: message, fields: fields)
    }

    func answer(_ outcome: PromotionOutcome, message: String, fields: [String: JSONValue]) -> APIResponse {
        var body = fields
        body["outcome"] = .string(outcome.name)
        body["exit_code"] = .integer(Int64(outcome.exitCode))
        body["node"] = .string(config.id.rawValue)
        body["message"] = .string(message)
        if let rule = outcome.rule { body["rule"] = .string(rule) }
        return .json(.object(body), status: outcome.httpStatus)
    }

    // MARK: Interrupted attempts

    private var attemptPath: String { config.dataDir + "/" + Self.attemptFileName }

    private func writeAttemptFile(toEpoch: Epoch, decisionID: String) {
        let json = JSONValue.object(["to_epoch": .integer(Int64(toEpoch.rawValue)), "decision_id": .string(decisionID)])
        try? DurableFile.replace(path: attemptPath, temp: attemptPath + ".tmp", bytes: Array((json.canonicalJSON + "\n").utf8), directory: config.dataDir)
    }

    private func removeAttemptFile() {
        try? FileManager.default.removeItem(atPath: attemptPath)
    }

    private func reportInterruptedAttempt() {
        guard let data = FileManager.default.contents(atPath: attemptPath),
              let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)) else { return }
        let toEpoch = json["to_epoch"]?.uint64Value ?? 0
        let authority = engine.authority
        let inForce = authority.epoch.rawValue >= toEpoch && authority.role == .primary
            ? "new: this node is primary of epoch \(authority.epoch)"
            : "old: epoch \(authority.epoch), role \(authority.role.rawValue); the promotion to epoch \(toEpoch) did not happen"
        logger.error("a promotion was interrupted by a crash", metadata: ["to_epoch": "\(toEpoch)", "authority": "\(inForce)"])
        service.journal.record("promotion_interrupted", fields: [
            "decision_id": json["decision_id"] ?? .null, "to_epoch": .integer(Int64(toEpoch)), "authority_in_force": .string(inForce),
        ], durability: .sync)
        removeAttemptFile()
    }
}
