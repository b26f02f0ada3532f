// PromotionCoordinator.swift — the I/O driver of FailoverStateMachine on the candidate.
//
// `POST /v1/admin/promote` lands here. The coordinator feeds the state machine events and
// performs the actions it returns; the machine decides what happens next, the coordinator only
// does the I/O and reports what happened. Design rules:
//   1. One promotion at a time per node: a second request while one runs is refused at once
//      with PROMOTE-BUSY-1, never queued.
//   2. Every decision (dry run or not) is recorded in the DecisionLog with its facts document
//      and explanation before it is answered, and journaled (`promotion_decision`).
//   3. A real run given `expect_facts_digest` is refused with PROMOTE-DIGEST-1 when the facts
//      captured now have another digest: the cluster changed since the operator's dry run.
//   4. Before any authority change, a majority of members promise the new epoch to this
//      candidate (PromotionClaim.swift, C3; PROMOTE-CLAIM-1 otherwise). Failed attempts release
//      the promises they got.
//   5. The authority record (epoch+1, role primary, history entry starting at durable+1) is
//      written durably by `StorageEngine.promote` before the replication listener starts and
//      before the service takes writes; the epoch-start record it appends is the first write of
//      the new epoch, and the answer is sent only after it is durable.
//   6. Switchover: the old primary is fenced first (it promises the epoch too); if the candidate
//      does not reach its final LSN within `switchover_catch_up_timeout_ms`, the fence is lifted
//      and the attempt refused with PROMOTE-CATCHUP-1.
//   7. After the commit, every other member is told to follow (`POST /v1/admin/follow`); the
//      answer lists who was re-pointed, who refused (with why) and who did not answer.
//   8. No retries: every step runs once, bounded; a failed step fails the attempt.
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
    /// Poll interval while a switchover waits for the candidate's catch-up.
    static let catchUpPollMs: UInt64 = 1
    static let attemptFileName = "promotion-attempt.json"
    static let policyDefinitionSuffix = ".d.lua"

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
            metrics.refused(rule: "PROMOTE-BUSY-1")
            return answer(outcome: "refused", rule: "PROMOTE-BUSY-1",
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
        let policies: [PolicySource]
        do {
            policies = try loadPolicies()
        } catch {
            return unusable("PROMOTE-POLICY-1", "policy_dir is unusable, so no decision was made: \(error)")
        }
        let captured: PromotionFacts.Captured
        do {
            captured = try await PromotionFacts.capture(kind: request.kind, requestedBy: request.requestedBy, service: service)
        } catch {
            return unusable("PROMOTE-FACTS-1", "the captured facts are unusable, so no decision was made: \(error)")
        }
        let facts = captured.document
        let decision = PromotionEngine(policies: policies, sandbox: PolicySandbox(budget: PolicySandbox.defaultBudget, isolation: .worker)).decide(facts)
        let stateDigest = Self.stateDigest(facts)
        let digestMismatch = request.expectFactsDigest.map { $0 != stateDigest } ?? false
        let id: String
        do {
            id = try decisions.record(facts: facts, decision: decision, dryRun: request.dryRun, capturedMs: captured.capturedMs, extra: [
                "expect_facts_digest": request.expectFactsDigest.map { .string($0) } ?? .null,
                "policy_dir": config.policyDir.map { .string($0) } ?? .null,
            ])
            try service.journal.append("promotion_decision", fields: [
                "id": .string(id), "dry_run": .bool(request.dryRun), "allowed": .bool(decision.allowed),
                "kind": .string(request.kind), "facts_digest": .string(facts.digest),
                "reasons": .array(decision.reasons.map { .string($0.description) }),
            ], durability: .sync)
        } catch {
            return unusable("PROMOTE-RECORD-1", "the decision could not be recorded, so it is not acted on: \(error)")
        }
        metrics.decided(decision)
        var fields: [String: JSONValue] = [
            "decision_id": .string(id), "facts_digest": .string(stateDigest), "document_digest": .string(facts.digest), "decision": decision.json,
            "text": .string(decision.text), "explanation": .string(decision.explainText), "dry_run": .bool(request.dryRun),
        ]
        if digestMismatch, !request.dryRun {
            metrics.refused(rule: "PROMOTE-DIGEST-1")
            let message = "the facts changed since the operator saw them: expected facts digest \(request.expectFactsDigest!), captured \(stateDigest) (decision \(id)); run a new dry run and check it"
            journalOutcome("promotion_refused", id: id, rule: "PROMOTE-DIGEST-1", message: message)
            return answer(outcome: "refused", rule: "PROMOTE-DIGEST-1", message: message, fields: fields)
        }
        guard let kind = PromotionKind(rawValue: request.kind) else {
            // REQ-1 refused it; there is no attempt to drive.
            return answer(outcome: decision.allowed ? "allowed" : "refused", rule: nil, message: decision.text, fields: fields)
        }
        if request.dryRun {
            return answer(outcome: decision.allowed ? "allowed" : "refused", rule: nil, message: decision.text, fields: fields)
        }
        var machine = FailoverStateMachine(request: PromotionRequest(kind: kind, candidate: config.id, requestedBy: request.requestedBy))
        _ = machine.validate()
        var action = machine.decided(decision, facts: facts)
        var fencedPrimary: NodeID?
        var granted: [NodeID] = []
        let oldPrimary = facts.cluster.primary
        let toEpoch = facts.cluster.epoch.successor
        if decision.allowed { writeAttemptFile(toEpoch: toEpoch, decisionID: id) }
        defer { removeAttemptFile() }
        PromotionFaults.reached(.afterDecision)
        while true {
            switch action {
            case .captureFactsAndDecide:
                preconditionFailure("facts were captured before the machine was driven")
            case .reportDenied:
                journalOutcome("promotion_refused", id: id, rule: nil, message: decision.text)
                return answer(outcome: "refused", rule: nil, message: decision.text, fields: fields)
            case .fencePrimary(let primary, let epoch):
                switch await fence(primary, epoch: epoch, toEpoch: toEpoch, attempt: id) {
                case .success(let finalLSN):
                    fencedPrimary = primary
                    PromotionFaults.reached(.afterFence)
                    action = machine.primaryFenced(finalLSN: finalLSN)
                case .failure(let why):
                    action = machine.stepFailed(why.description)
                }
            case .awaitCatchUp(_, let lsn):
                if let durable = await awaitDurable(lsn) {
                    if let why = await claimMajority(toEpoch, fencedPrimary: fencedPrimary, granted: &granted) {
                        await release(toEpoch, granted: granted)
                        await unfence(oldPrimary, epoch: facts.cluster.epoch, attempt: id)
                        fields["rule"] = .string("PROMOTE-CLAIM-1")
                        action = machine.stepFailed(why)
                    } else {
                        PromotionFaults.reached(.afterClaim)
                        action = machine.candidateCaughtUp(durableLSN: durable)
                    }
                } else {
                    await unfence(oldPrimary, epoch: facts.cluster.epoch, attempt: id)
                    fields["rule"] = .string("PROMOTE-CATCHUP-1")
                    action = machine.stepFailed(
                        "PROMOTE-CATCHUP-1: \(config.id) did not become durable to \(lsn) within switchover_catch_up_timeout_ms \(config.timeouts.switchoverCatchUpTimeoutMs) (durable to \(engine.durableLSN)); the fence of \(oldPrimary) was lifted")
                }
            case .detachCandidate:
                await roles.stopFollowing()
                service.installRole(hooks: nil, observer: nil)
                PromotionFaults.reached(.afterDetach)
                if let why = await claimMajority(toEpoch, fencedPrimary: nil, granted: &granted) {
                    await release(toEpoch, granted: granted)
                    _ = roles.startFollowing()
                    service.installRole(hooks: nil, observer: roles.observer)
                    fields["rule"] = .string("PROMOTE-CLAIM-1")
                    action = machine.stepFailed(why)
                } else {
                    PromotionFaults.reached(.afterClaim)
                    action = machine.candidateDetached(durableLSN: engine.durableLSN)
                }
            case .commitAuthority(_, let epoch):
                await roles.stopFollowing()
                service.installRole(hooks: nil, observer: nil)
                do {
                    let entry = try await engine.promote(to: epoch)
                    PromotionFaults.reached(.afterAuthority)
                    try service.journal.append("promotion_committed", fields: [
                        "id": .string(id), "epoch": .integer(Int64(epoch.rawValue)), "start_lsn": .integer(Int64(entry.startLSN.rawValue)),
                    ], durability: .sync)
                    let hooks = try await roles.startPrimary()
                    service.installRole(hooks: hooks, observer: nil)
                    PromotionFaults.reached(.afterPrimaryStart)
                    fields["start_lsn"] = .integer(Int64(entry.startLSN.rawValue))
                    action = machine.authorityCommitted(epoch: epoch)
                } catch {
                    let committed = engine.authority.epoch == epoch
                    action = machine.stepFailed(committed
                        ? "the authority for epoch \(epoch) is committed on \(config.id), but its primary role could not start: \(error)"
                        : "writing the authority for epoch \(epoch) failed: \(error)")
                }
            case .reportPromoted(_, let epoch):
                let repointed = await repoint(epoch: epoch)
                PromotionFaults.reached(.afterRepoint)
                fields.merge(repointed) { a, _ in a }
                fields["epoch"] = .integer(Int64(epoch.rawValue))
                let verified = verifyNewEpochWrite(epoch)
                fields["verified_write"] = verified.map { .string($0) } ?? .null
                metrics.promoted()
                journalOutcome("promotion_promoted", id: id, rule: nil, message: "\(config.id) is primary of epoch \(epoch)", extra: repointed)
                guard verified == nil else {
                    return answer(outcome: "failed", rule: "PROMOTE-VERIFY-1", message: verified!, fields: fields)
                }
                return answer(outcome: "promoted", rule: nil, message: "\(config.id) is primary of epoch \(epoch)", fields: fields)
            case .reportFailed(let failure):
                metrics.failed(step: failure.step.rawValue)
                let rule = fields["rule"]?.stringValue ?? "PROMOTE-STEP-1"
                journalOutcome("promotion_failed", id: id, rule: rule, message: "step \(failure.step.rawValue): \(failure.message)")
                return answer(outcome: "failed", rule: rule, message: "step \(failure.step.rawValue): \(failure.message)", fields: fields)
            }
        }
    }

    /// Rule 3's digest: SHA-256 of the canonical JSON of the facts document without
    /// `captured_at` (the one clock reading), so that it changes exactly when the cluster's
    /// reported state changed. The decision itself cites the whole document's digest
    /// (`document_digest`).
    static func stateDigest(_ facts: FactsDocument) -> String {
        guard case .object(var members) = facts.json else { preconditionFailure("a facts document is an object") }
        members["captured_at"] = nil
        return Digest.sha256Hex(JSONValue.object(members).canonicalJSON.utf8)
    }

    // MARK: Steps

    private struct StepError: Error, CustomStringConvertible {
        let description: String
    }

    private func fence(_ primary: NodeID, epoch: Epoch, toEpoch: Epoch, attempt: String) async -> Result<LSN, StepError> {
        guard let member = config.members.first(where: { $0.id == primary }) else {
            return .failure(StepError(description: "the primary \(primary) is not a configured member"))
        }
        if PromotionFaults.fails(.fence) {
            return .failure(StepError(description: "\(primary) was not fenced: \(PromotionFaults.injected(.fence))"))
        }
        let body = JSONValue.object(["epoch": .integer(Int64(epoch.rawValue)), "to_epoch": .integer(Int64(toEpoch.rawValue)),
                                     "candidate": .string(config.id.rawValue), "attempt": .string(attempt)])
        do {
            let reply = try await PeerHTTP.send("POST", member.http, "/v1/admin/fence", body: body, timeoutMs: config.timeouts.factsGatherTimeoutMs + config.timeouts.syncCommitTimeoutMs)
            guard reply.status == 200, let final = reply.json?["final_lsn"]?.uint64Value else {
                return .failure(StepError(description: "\(primary) refused the fence: \(reply.text.trimmingCharacters(in: .whitespacesAndNewlines))"))
            }
            return .success(LSN(final))
        } catch {
            return .failure(StepError(description: "\(primary) did not answer the fence: \(error)"))
        }
    }

    /// Lifts the fence after this attempt failed; `candidate_gave_up` tells the primary not to
    /// ask this node (still busy with this attempt) whether it runs a promotion (U2), and
    /// `attempt` makes it lift only this attempt's fence (U6).
    private func unfence(_ primary: NodeID, epoch: Epoch, attempt: String) async {
        guard let member = config.members.first(where: { $0.id == primary }) else { return }
        let body = JSONValue.object(["epoch": .integer(Int64(epoch.rawValue)), "candidate": .string(config.id.rawValue),
                                     "candidate_gave_up": .bool(true), "attempt": .string(attempt)])
        _ = try? await PeerHTTP.send("POST", member.http, "/v1/admin/unfence", body: body, timeoutMs: config.timeouts.factsGatherTimeoutMs)
    }

    /// Waits (bounded) until this node is durable to `lsn`; nil on timeout. The bound is a
    /// monotonic deadline, not a count of polls: on a loaded host each poll sleeps longer than
    /// asked, and the old primary stays fenced (no writes) for as long as this waits.
    private func awaitDurable(_ lsn: LSN) async -> LSN? {
        let deadlineMs = CommitWaiters.monotonicMs() + config.timeouts.switchoverCatchUpTimeoutMs
        while true {
            let durable = engine.durableLSN
            if durable >= lsn && !PromotionFaults.fails(.catchUp) { return durable }
            if CommitWaiters.monotonicMs() >= deadlineMs { return nil }
            try? await Task.sleep(for: .milliseconds(Self.catchUpPollMs))
        }
    }

    /// C3: this node, the fenced primary (it promised when fenced) and enough others promise
    /// `epoch`. Returns the refusal when no majority promised; `granted` lists who did.
    private func claimMajority(_ epoch: Epoch, fencedPrimary: NodeID?, granted: inout [NodeID]) async -> String? {
        let majority = config.members.count / 2 + 1
        if let why = claims.promise(epoch, to: config.id, nodeEpoch: engine.currentEpoch) {
            return "PROMOTE-CLAIM-1: \(config.id) cannot promise epoch \(epoch) to itself: \(why)"
        }
        granted = [config.id] + (fencedPrimary.map { [$0] } ?? [])
        let others = config.members.filter { $0.id != config.id && $0.id != fencedPrimary }
        let body = JSONValue.object(["epoch": .integer(Int64(epoch.rawValue)), "candidate": .string(config.id.rawValue)])
        let timeoutMs = config.timeouts.factsGatherTimeoutMs
        var answers: [(NodeID, String?)] = []
        await withTaskGroup(of: (NodeID, String?).self) { group in
            for member in others {
                group.addTask {
                    do {
                        let reply = try await PeerHTTP.send("POST", member.http, "/v1/admin/claim", body: body, timeoutMs: timeoutMs)
                        if reply.status == 200 { return (member.id, nil) }
                        return (member.id, reply.json?["message"]?.stringValue ?? reply.text)
                    } catch {
                        return (member.id, "no answer (\(error))")
                    }
                }
            }
            for await answer in group { answers.append(answer) }
        }
        granted += answers.filter { $0.1 == nil }.map(\.0)
        guard granted.count >= majority else {
            let refusals = answers.compactMap { id, why in why.map { "\(id): \($0)" } }.sorted()
            return "PROMOTE-CLAIM-1: only \(granted.count) of \(config.members.count) members (\(granted.map(\.rawValue).sorted().joined(separator: ", "))) promised epoch \(epoch) to \(config.id); a majority of \(majority) is needed so that no other candidate can take the same epoch (\(refusals.joined(separator: "; ")))"
        }
        return nil
    }

    private func release(_ epoch: Epoch, granted: [NodeID]) async {
        claims.release(epoch, candidate: config.id)
        let body = JSONValue.object(["epoch": .integer(Int64(epoch.rawValue)), "candidate": .string(config.id.rawValue)])
        for member in config.members where member.id != config.id && granted.contains(member.id) {
            _ = try? await PeerHTTP.send("POST", member.http, "/v1/admin/release", body: body, timeoutMs: config.timeouts.factsGatherTimeoutMs)
        }
    }

    /// Tells every other member to follow this node at `epoch`.
    private func repoint(epoch: Epoch) async -> [String: JSONValue] {
        let authority = engine.authority
        let body = JSONValue.object([
            "primary": .string(config.id.rawValue), "epoch": .integer(Int64(epoch.rawValue)),
            "history": .array(authority.history.map(AdminService.historyJSON)),
        ])
        let timeoutMs = config.timeouts.factsGatherTimeoutMs
        var repointed: [String] = [], refused: [JSONValue] = [], unreachable: [String] = []
        await withTaskGroup(of: (NodeID, Int?, String).self) { group in
            for member in config.members where member.id != config.id {
                group.addTask {
                    do {
                        let reply = try await PeerHTTP.send("POST", member.http, "/v1/admin/follow", body: body, timeoutMs: timeoutMs)
                        return (member.id, reply.status, reply.json?["message"]?.stringValue ?? reply.text)
                    } catch {
                        return (member.id, nil, "\(error)")
                    }
                }
            }
            for await (id, status, message) in group {
                switch status {
                case 200?: repointed.append(id.rawValue)
                case nil: unreachable.append(id.rawValue)
                case _?: refused.append(.object(["node": .string(id.rawValue), "message": .string(message)]))
                }
            }
        }
        return ["repointed": .array(repointed.sorted().map { .string($0) }), "unreachable": .array(unreachable.sorted().map { .string($0) }),
                "repoint_refused": .array(refused)]
    }

    /// The first write of the new epoch (the epoch-start record) is durable and this node takes
    /// writes as the primary of `epoch`; nil when verified, else what is wrong.
    private func verifyNewEpochWrite(_ epoch: Epoch) -> String? {
        if PromotionFaults.fails(.verify) { return "the first write of epoch \(epoch) was not verified: \(PromotionFaults.injected(.verify))" }
        let authority = engine.authority
        guard authority.role == .primary, authority.epoch == epoch, let entry = authority.history.last, entry.epoch == epoch else {
            return "\(config.id) is not the primary of epoch \(epoch) after the commit (authority: \(authority.role.rawValue) of epoch \(authority.epoch))"
        }
        guard engine.durableLSN >= entry.startLSN, engine.lastEpoch == epoch else {
            return "the epoch-start record at \(entry.startLSN) is not durable (durable to \(engine.durableLSN))"
        }
        guard roles.isPrimaryRunning || config.members.count <= 1 else { return "the primary role did not start" }
        return nil
    }

    // MARK: Policies, journal, answers

    private func loadPolicies() throws -> [PolicySource] {
        guard let dir = config.policyDir else { return [] }
        let sources = try PolicyLoader.load(paths: [dir]).filter { !$0.path.hasSuffix(Self.policyDefinitionSuffix) }
        if sources.isEmpty { throw PolicyLoadError(path: dir, message: "holds no policy (*.lua)") }
        return sources
    }

    /// Rule 9: a request that cannot be decided (PROMOTE-POLICY-1, PROMOTE-FACTS-1,
    /// PROMOTE-RECORD-1) changes nothing, is counted and journaled, and answers exit code 2.
    private func unusable(_ rule: String, _ message: String) -> APIResponse {
        metrics.refused(rule: rule)
        logger.error("promotion request unusable", metadata: ["rule": "\(rule)", "message": "\(message)"])
        journalOutcome("promotion_refused", id: nil, rule: rule, message: message)
        return answer(outcome: "unusable", rule: rule, message: message, fields: [:])
    }

    private func journalOutcome(_ event: String, id: String?, rule: String?, message: String, extra: [String: JSONValue] = [:]) {
        var fields: [String: JSONValue] = ["id": id.map { .string($0) } ?? .null, "message": .string(message)]
        if let rule { fields["rule"] = .string(rule) }
        for (key, value) in extra { fields[key] = value }
        _ = try? service.journal.append(event, fields: fields, durability: .sync)
    }

    private func answer(outcome: String, rule: String?, message: String, fields: [String: JSONValue]) -> APIResponse {
        let exitCode: Int64 = switch outcome {
        case "allowed", "promoted": 0
        case "unusable": 2
        default: 1
        }
        var body = fields
        body["outcome"] = .string(outcome)
        body["exit_code"] = .integer(exitCode)
        body["node"] = .string(config.id.rawValue)
        body["message"] = .string(message)
        if let rule { body["rule"] = .string(rule) }
        let status = switch outcome {
        case "allowed", "promoted": 200
        case "unusable": 422
        case "failed": 503
        default: 409
        }
        return .json(.object(body), status: status)
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
        _ = try? service.journal.append("promotion_interrupted", fields: [
            "decision_id": json["decision_id"] ?? .null, "to_epoch": .integer(Int64(toEpoch)), "authority_in_force": .string(inForce),
        ], durability: .sync)
        removeAttemptFile()
    }
}
