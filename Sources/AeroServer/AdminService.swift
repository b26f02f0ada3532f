// AdminService.swift — what `/v1/admin/*` does on a node (routes in AdminRoutes.swift):
//
//   POST /v1/admin/promote     this node is the candidate (PromotionCoordinator)
//   GET  /v1/admin/decisions   recorded decisions, newest first;  /{id}: one, with its facts
//   POST /v1/admin/fence       primary: stop writes at epoch E, promise E+1 to the candidate,
//                              answer the demotion receipt {"epoch","final_lsn"}
//   POST /v1/admin/unfence     primary: lift the fence (a switchover that timed out, or one
//                              whose candidate crashed: `aerodb unfence`)
//   POST /v1/admin/claim       promise epoch E to a candidate (PromotionClaim.swift)
//   POST /v1/admin/release     withdraw that promise (the candidate's attempt failed)
//   POST /v1/admin/follow      follow primary P at epoch E with history H (re-pointing)
//
// Follow rules (issue 6; every refusal names its rule, and is journaled):
//   F1. A follow at an epoch below this node's is refused (PROMOTE-FOLLOW-1).
//   F2. C4: a node that promised epoch E to another candidate refuses to follow P at E.
//   F3. A node follows only if its WAL is a prefix of P's history: its own history is a prefix
//       of H, and it holds no record at or past the start LSN of the first epoch of H above the
//       epoch of its last record. Otherwise it is diverged: refused with PROMOTE-DIVERGED-1,
//       which says to run `aerodb reseed`. Nothing is rewound, ever.
//   F4. Learning of a higher epoch stops writes at once, whether or not the follow is taken
//       (`KVService.learnedHigherEpoch` fences the engine).
//   F5. Taking the follow: the primary role stops (no acknowledgement after), the authority file
//       becomes (replica, epoch E, following P, history H) durably, then the follow loop starts.
//
// Unfence rules (`aerodb unfence`; the candidate's own unfence after PROMOTE-CATCHUP-1):
//   U1. Only the primary of epoch E lifts a fence of epoch E (PROMOTE-FENCE-1 otherwise).
//   U2. If it promised E+1 to a candidate, that candidate must answer (`GET /v1/admin/promotion`)
//       at E or below with no promotion running: a candidate at a newer epoch committed it
//       (refused, and the newer epoch is learned), one whose attempt still runs may commit it
//       right after answering (it holds this node's promise from the fence), a candidate that
//       does not answer may have. All are PROMOTE-UNFENCE-1. The operator may assert the
//       candidate is lost for good (`candidate_lost`); the candidate itself lifts the fence after
//       its attempt failed (`candidate_gave_up`). Both skip the question and are journaled.
//       A request naming another candidate than the one promised E+1 is refused (it would
//       ask, and withdraw the promise of, the wrong node).
//   U3. Lifting withdraws the promise of E+1 to that candidate, so another may be promoted.
//   U4. Fence and unfence of this node run one at a time, in the busy slot of role changes
//       (PROMOTE-BUSY-1 otherwise): a fence cannot land between U2's answer and the lifting.
//   U5. A node that has seen a newer epoch (F4) is not unfenced (PROMOTE-UNFENCE-1): it never
//       takes writes again, and an answer saying it does would mislead the operator.
//   U6. A candidate's own unfence (`candidate_gave_up`) names the attempt that fenced (`attempt`,
//       its decision id, sent with the fence) and lifts only that attempt's fence: a late
//       answer of an earlier, failed attempt (delayed past its timeout) never lifts the fence of
//       the same candidate's next attempt, which may still commit E+1 (PROMOTE-UNFENCE-1).

import AeroCore
import AeroStorage
import Foundation
import Logging
import NIOConcurrencyHelpers

public final class AdminService: Sendable {
    let service: KVService
    let roles: NodeRoles
    let coordinator: PromotionCoordinator?
    let decisions: DecisionLog?
    let claims: PromotionClaimFile?
    /// Refusals are counted even when the coordinator could not be set up (`unavailable`).
    let metrics: PromotionMetrics
    let logger: Logger
    /// Why the admin API could not be set up (a data dir that cannot hold decisions); every
    /// admin call then answers this instead of acting.
    let unavailable: String?
    /// U6: the attempt (decision id) whose fence holds now; nil when not fenced, or fenced by a
    /// request that named none.
    private let fencingAttempt = NIOLockedValueBox<String?>(nil)

    init(service: KVService, roles: NodeRoles, logger: Logger) {
        self.service = service
        self.roles = roles
        self.logger = logger
        let metrics = PromotionMetrics(registry: service.metrics.registry)
        self.metrics = metrics
        do {
            let decisions = try DecisionLog(dataDir: service.config.dataDir, node: service.config.id)
            let claims = try PromotionClaimFile(directory: service.config.dataDir)
            self.decisions = decisions
            self.claims = claims
            service.promiseView.withLockedValue { $0 = { claims.promise.map { ($0.epoch, $0.candidate) } } }
            coordinator = PromotionCoordinator(service: service, roles: roles, decisions: decisions, claims: claims,
                                               metrics: metrics, logger: logger)
            unavailable = nil
        } catch {
            decisions = nil
            claims = nil
            coordinator = nil
            unavailable = "\(error)"
        }
    }

    var config: ServerConfig { service.config }
    var engine: StorageEngine { service.engine }

    static func historyJSON(_ entry: EpochHistoryEntry) -> JSONValue { entry.json }

    // MARK: Promotion and decisions

    func promote(body: [UInt8]) async -> APIResponse {
        guard let coordinator else {
            // Nothing can be recorded, so nothing is decided: unusable, exit code 2, like the
            // coordinator's own PROMOTE-RECORD-1.
            return refuse(RuleID.promoteRecord1.rawValue, "the decision log is unavailable, so no decision is made: \(unavailable ?? "")", status: 500,
                          extra: ["outcome": .string("unusable"), "exit_code": .integer(2)])
        }
        guard let json = try? JSONParser.parse(String(decoding: body, as: UTF8.self)), json.objectValue != nil else {
            return badRequest("the body must be a JSON object {\"kind\":\"failover|switchover\", ...}")
        }
        guard let kind = json["kind"]?.stringValue else { return badRequest("kind: expected \"failover\" or \"switchover\"") }
        return await coordinator.promote(PromotionCoordinator.Request(
            kind: kind, dryRun: json["dry_run"]?.boolValue ?? false,
            expectFactsDigest: json["expect_facts_digest"]?.stringValue, requestedBy: json["requested_by"]?.stringValue))
    }

    func listDecisions() -> APIResponse {
        guard let decisions else { return refuse(RuleID.promoteRecord1.rawValue, unavailable ?? "", status: 500) }
        return .json(.object(["node": .string(config.id.rawValue), "decisions": .array(decisions.list())]))
    }

    func decision(id: String) -> APIResponse {
        guard let record = decisions?.read(id: id) else {
            var message = "no decision \"\(id.prefix(80))\" on \(config.id)"
            // Ids are NODE-MILLIS-SEQ, recorded by the candidate that decided: name that node.
            let parts = id.split(separator: "-")
            if parts.count >= 3, parts.suffix(2).allSatisfy({ $0.allSatisfy(\.isNumber) }) {
                let owner = parts.dropLast(2).joined(separator: "-")
                if owner != config.id.rawValue {
                    if let member = config.members.first(where: { $0.id.rawValue == owner }) {
                        message += ": the id belongs to \(owner), which recorded it; ask it with --addr \(member.http)"
                    } else {
                        message += ": the id belongs to \(owner.prefix(40)), which is not a member of this cluster"
                    }
                }
            }
            return .json(Refusal.request(.notFound, message).json, status: 404)
        }
        return .json(record)
    }

    // MARK: Fence, claim

    func fence(body: [UInt8]) async -> APIResponse {
        guard let json = parse(body), let epoch = json["epoch"]?.uint64Value, let toEpoch = json["to_epoch"]?.uint64Value,
              let candidate = json["candidate"]?.stringValue else {
            return badRequest("expected {\"epoch\":E,\"to_epoch\":E+1,\"candidate\":\"id\"}")
        }
        let authority = engine.authority
        guard authority.role == .primary, authority.epoch == Epoch(epoch) else {
            return refuse(RuleID.promoteFence1.rawValue, "\(config.id) is \(authority.role.rawValue) of epoch \(authority.epoch), not the primary of epoch \(epoch): nothing to fence")
        }
        // The fence promises the next epoch and nothing else: unfence (U2) asks the candidate
        // promised E+1, so a fence for a later epoch would let an unfence skip that question.
        guard toEpoch == epoch + 1 else {
            return refuse(RuleID.promoteFence1.rawValue, "\(config.id) is fenced only for epoch \(epoch + 1), the successor of its epoch \(epoch); asked for epoch \(toEpoch)")
        }
        let acquired = coordinator?.tryAcquire()
        guard acquired != false else {
            return refuse(RuleID.promoteBusy1.rawValue, "\(config.id) is changing its role or its fence already; ask again once that ended")
        }
        defer { if acquired == true { coordinator?.releaseBusy() } }
        // C3: the candidate counts this fence as a promise of `toEpoch`; without a claim file
        // (`unavailable`) none can be made, so no fence either.
        if let why = claims?.promise(Epoch(toEpoch), to: NodeID(candidate), nodeEpoch: authority.epoch) ?? unavailable {
            return refuse(RuleID.promoteClaim1.rawValue, "\(config.id) will not be fenced for \(candidate): \(why)")
        }
        do {
            let final = try await engine.fence()
            fencingAttempt.withLockedValue { $0 = json["attempt"]?.stringValue }
            service.fenceRecord.withLockedValue {
                $0 = FenceRecord(epoch: Epoch(epoch), toEpoch: Epoch(toEpoch), candidate: NodeID(candidate),
                                 attempt: json["attempt"]?.stringValue, sinceMs: EventJournal.wallClockMs())
            }
            service.journal.record("fenced", fields: [
                "epoch": .integer(Int64(epoch)), "candidate": .string(candidate), "final_lsn": .integer(Int64(final.rawValue)),
            ], durability: .sync)
            return .json(.object(["node": .string(config.id.rawValue), "epoch": .integer(Int64(epoch)), "final_lsn": .integer(Int64(final.rawValue))]))
        } catch {
            return refuse(RuleID.promoteFence1.rawValue, "\(config.id) could not finish its in-flight commits: \(error)", status: 500)
        }
    }

    /// U1–U4: lifts the fence of epoch E. `candidate` names whose promise of E+1 is withdrawn;
    /// left out, it is the candidate this node promised E+1 to (when it was fenced).
    func unfence(body: [UInt8]) async -> APIResponse {
        guard let json = parse(body), let epoch = json["epoch"]?.uint64Value,
              json["candidate"] == nil || json["candidate"]?.stringValue != nil,
              json["candidate_lost"] == nil || json["candidate_lost"]?.boolValue != nil,
              json["candidate_gave_up"] == nil || json["candidate_gave_up"]?.boolValue != nil,
              json["attempt"] == nil || json["attempt"]?.stringValue != nil else {
            return badRequest("expected {\"epoch\":E} with optional \"candidate\":\"id\", \"candidate_lost\":true, and (a candidate's own) \"candidate_gave_up\":true with \"attempt\":\"decision id\"")
        }
        let acquired = coordinator?.tryAcquire()
        guard acquired != false else {
            return refuse(RuleID.promoteBusy1.rawValue, "\(config.id) is changing its role or its fence already; ask again once that ended")
        }
        defer { if acquired == true { coordinator?.releaseBusy() } }
        let authority = engine.authority
        guard authority.role == .primary, authority.epoch == Epoch(epoch) else {
            if authority.role != .primary {
                return refuse(RuleID.promoteFence1.rawValue, "\(config.id) is a \(authority.role.rawValue) (epoch \(authority.epoch)), not a fenced primary: it has no fence to lift; `aerodb unfence` is for the old primary of a switchover that did not complete (`aerodb status` on it shows its fence)")
            }
            return refuse(RuleID.promoteFence1.rawValue, "\(config.id) is primary of epoch \(authority.epoch), not of epoch \(epoch): the fence asked about is not this node's; nothing was changed")
        }
        // F4: a node that saw a newer epoch never takes writes again; lifting its fence would
        // only claim it does.
        if let seen = service.learnedEpoch {
            return refuse(RuleID.promoteUnfence1.rawValue, "\(config.id) stays fenced at epoch \(epoch): it has seen epoch \(seen.epoch) (from \(seen.from)), so a newer primary exists; this node must rejoin (`aerodb rejoin`), not take writes again")
        }
        let next = Epoch(epoch).successor
        let promised = claims?.promise.flatMap { $0.epoch == next ? $0.candidate : nil }
        let named = json["candidate"]?.stringValue.map { NodeID($0) }
        if let named, let promised, named != promised {
            return refuse(RuleID.promoteUnfence1.rawValue, "\(config.id) stays fenced at epoch \(epoch): it promised epoch \(next) to \(promised), not to \(named); that is the candidate to ask about (leave candidate out)")
        }
        let candidate = named ?? promised
        let candidateLost = json["candidate_lost"]?.boolValue ?? false
        let candidateGaveUp = json["candidate_gave_up"]?.boolValue ?? false
        if candidateGaveUp {
            let attempt = json["attempt"]?.stringValue
            let current = fencingAttempt.withLockedValue { $0 }
            guard engine.isFenced, let attempt, attempt == current else {
                return refuse(RuleID.promoteUnfence1.rawValue, "\(config.id) stays as it is at epoch \(epoch): \(candidate.map { "\($0)" } ?? "the candidate") gave up attempt \(attempt ?? "(none named)"), but \(engine.isFenced ? "the fence is attempt \(current ?? "(none named)")'s" : "no fence holds"); a late answer of an earlier attempt lifts nothing")
            }
        }
        if let candidate, candidate != config.id, !candidateLost, !candidateGaveUp, let why = await newerEpochPossible(candidate, epoch: Epoch(epoch)) {
            return refuse(RuleID.promoteUnfence1.rawValue, "\(config.id) stays fenced at epoch \(epoch): \(why)")
        }
        let wasFenced = engine.isFenced
        let released = candidate.map { claims?.release(next, candidate: $0) ?? false } ?? false
        engine.unfence()
        fencingAttempt.withLockedValue { $0 = nil }
        service.fenceRecord.withLockedValue { $0 = nil }
        service.journal.record("unfenced", fields: [
            "epoch": .integer(Int64(epoch)), "candidate": candidate.map { .string($0.rawValue) } ?? .null, "was_fenced": .bool(wasFenced),
            "candidate_lost": .bool(candidateLost), "candidate_gave_up": .bool(candidateGaveUp),
        ], durability: .sync)
        return .json(.object([
            "node": .string(config.id.rawValue), "epoch": .integer(Int64(epoch)), "fenced": .bool(false), "was_fenced": .bool(wasFenced),
            "released_promise": released ? .object(["epoch": .integer(Int64(next.rawValue)), "candidate": .string(candidate!.rawValue)]) : .null,
        ]))
    }

    /// U2: why `candidate` (which this node promised epoch+1 to) may be, or is, primary of a
    /// newer epoch; nil when it answers at `epoch` or below with no promotion running. A
    /// candidate at a newer epoch is learned (F4: this node then refuses writes for good).
    private func newerEpochPossible(_ candidate: NodeID, epoch: Epoch) async -> String? {
        guard let member = config.members.first(where: { $0.id == candidate }) else {
            return "\(candidate) is not a configured member; name the candidate whose promise is withdrawn"
        }
        let state: PeerAdminClient.PromotionState
        switch await PeerAdminClient(config: config).promotionState(candidate) {
        case .success(let answer): state = answer
        case .failure(let failure):
            // Say what actually happened (refused at once, timed out, a wrong answer), not a guess.
            let why: String
            if case .noAnswer(_, let message) = failure { why = message } else { why = failure.description }
            return "it promised epoch \(epoch.successor) to \(candidate), which may have become its primary, and \(candidate) gave no promotion state at \(member.http) (\(why)). Start \(candidate) (it reports its authority) and ask again; only if \(candidate) is lost for good, ask with candidate_lost (`aerodb unfence --candidate-lost`)"
        }
        guard state.epoch <= epoch else {
            await service.learnedHigherEpoch(state.epoch, from: candidate.rawValue)
            return "\(candidate) is \(state.role ?? "?") of epoch \(state.epoch): a newer epoch exists, so this node must rejoin (`aerodb rejoin`), not take writes again"
        }
        if state.running {
            return "\(candidate) is running a promotion or a re-pointing, which may commit epoch \(epoch.successor) with the promise this node made when it was fenced; ask again once it ended"
        }
        return nil
    }

    /// U2's question, answered by a candidate: its authority, read while no promotion or
    /// re-pointing runs here (`running: true` otherwise). An attempt holds the busy slot from
    /// before it fences a primary until after its commit, so `running: false` at epoch E means
    /// no attempt of this node can still commit E+1 without fencing that primary again (U4).
    func promotionState() -> APIResponse {
        guard let coordinator else { return refuse(RuleID.promoteRecord1.rawValue, unavailable ?? "", status: 500) }
        let running = !coordinator.tryAcquire()
        let authority = engine.authority
        if !running { coordinator.releaseBusy() }
        return .json(.object([
            "node": .string(config.id.rawValue), "role": .string(authority.role.rawValue),
            "epoch": .integer(Int64(authority.epoch.rawValue)), "running": .bool(running),
        ]))
    }

    func claim(body: [UInt8]) -> APIResponse {
        guard let json = parse(body), let epoch = json["epoch"]?.uint64Value, let candidate = json["candidate"]?.stringValue else {
            return badRequest("expected {\"epoch\":E,\"candidate\":\"id\"}")
        }
        if let why = claims?.promise(Epoch(epoch), to: NodeID(candidate), nodeEpoch: engine.currentEpoch) ?? unavailable {
            return refuse(RuleID.promoteClaim1.rawValue, "\(config.id) does not promise epoch \(epoch) to \(candidate): \(why)")
        }
        service.journal.record("epoch_promised", fields: ["epoch": .integer(Int64(epoch)), "candidate": .string(candidate)], durability: .sync)
        return .json(.object(["node": .string(config.id.rawValue), "epoch": .integer(Int64(epoch)), "candidate": .string(candidate)]))
    }

    func release(body: [UInt8]) -> APIResponse {
        guard let json = parse(body), let epoch = json["epoch"]?.uint64Value, let candidate = json["candidate"]?.stringValue else {
            return badRequest("expected {\"epoch\":E,\"candidate\":\"id\"}")
        }
        let released = claims?.release(Epoch(epoch), candidate: NodeID(candidate)) ?? false
        return .json(.object(["node": .string(config.id.rawValue), "released": .bool(released)]))
    }

    // MARK: Follow

    func follow(body: [UInt8]) async -> APIResponse {
        guard let json = parse(body), let primaryText = json["primary"]?.stringValue, let epochValue = json["epoch"]?.uint64Value,
              let historyJSON = json["history"]?.arrayValue else {
            return badRequest("expected {\"primary\":\"id\",\"epoch\":E,\"history\":[{\"epoch\",\"primary\",\"start_lsn\"}...]}")
        }
        var history: [EpochHistoryEntry] = []
        for (index, entry) in historyJSON.enumerated() {
            guard let parsed = EpochHistoryEntry(json: entry) else {
                return badRequest("history[\(index)]: expected {\"epoch\":N,\"primary\":\"id\",\"start_lsn\":N,\"durability\":null or {\"quorum\":k,\"set\":[ids]}}")
            }
            history.append(parsed)
        }
        let primary = NodeID(primaryText), epoch = Epoch(epochValue)
        guard history.last?.epoch == epoch, history.last?.primary == primary, config.members.contains(where: { $0.id == primary }) else {
            return badRequest("the history's last entry must be epoch \(epoch) of \(primary), a configured member")
        }
        guard let coordinator else {
            return refuse(RuleID.promoteRecord1.rawValue, "\(config.id) cannot check its promises, so it follows no one: \(unavailable ?? "")", status: 500)
        }
        guard coordinator.tryAcquire() else {
            return refuse(RuleID.promoteBusy1.rawValue, "\(config.id) is changing its role already; ask again once that ended")
        }
        defer { coordinator.releaseBusy() }
        let authority = engine.authority
        if authority.role == .replica, authority.following == primary, authority.epoch == epoch, authority.history == history {
            return .json(.object(["node": .string(config.id.rawValue), "following": .string(primary.rawValue), "epoch": .integer(Int64(epoch.rawValue)), "changed": .bool(false)]))
        }
        guard primary != config.id else {
            return refuse(RuleID.promoteFollow1.rawValue, "\(config.id) cannot follow itself: the primary named (\(primary), epoch \(epoch)) is this node; name the current primary (`aerodb rejoin --primary-addr` its HTTP address)")
        }
        guard epoch > authority.epoch || (epoch == authority.epoch && authority.role == .replica) else {
            if epoch == authority.epoch {
                return refuse(RuleID.promoteFollow1.rawValue, "\(config.id) is itself the primary of epoch \(epoch), so it cannot follow \(primary) at that epoch: one writer per epoch; a node follows only a primary of a newer epoch")
            }
            return refuse(RuleID.promoteFollow1.rawValue, "\(config.id) is at epoch \(authority.epoch), newer than \(primary)'s epoch \(epoch): a node never follows the primary of an older epoch; `aerodb status` on both shows which is current")
        }
        // F4: from here on this node knows epoch `epoch` exists.
        if epoch > authority.epoch { await service.learnedHigherEpoch(epoch, from: primary.rawValue) }
        if let promise = claims?.promise, promise.epoch == epoch, promise.candidate != primary {
            return refuse(RuleID.promoteFollow1.rawValue, "\(config.id) promised epoch \(epoch) to \(promise.candidate), not to \(primary): it does not follow \(primary) at that epoch")
        }
        if let diverged = divergence(authority: authority, history: history) {
            return refuse(RuleID.promoteDiverged1.rawValue, "\(config.id) cannot follow \(primary) at epoch \(epoch): \(diverged). Nothing was rewound; re-seed this node from the new primary with `aerodb reseed`, then start it as a replica", status: 409)
        }
        await roles.stopAll()
        service.installRole(hooks: nil, observer: nil)
        do {
            try engine.updateAuthority { current in
                Authority(nodeID: current.nodeID, role: .replica, epoch: epoch, following: primary, history: history)
            }
        } catch {
            return refuse(RuleID.promoteFollow1.rawValue, "\(config.id) could not write its new authority: \(error)", status: 500)
        }
        engine.unfence()
        service.fenceRecord.withLockedValue { $0 = nil }
        let observer = roles.startFollowing()
        service.installRole(hooks: nil, observer: observer)
        service.journal.record("repointed", fields: [
            "primary": .string(primary.rawValue), "epoch": .integer(Int64(epoch.rawValue)), "previous_role": .string(authority.role.rawValue),
        ], durability: .sync)
        logger.info("following a new primary", metadata: ["primary": "\(primary)", "epoch": "\(epoch)"])
        return .json(.object(["node": .string(config.id.rawValue), "following": .string(primary.rawValue), "epoch": .integer(Int64(epoch.rawValue)), "changed": .bool(true)]))
    }

    /// F3: why this node's WAL is not a prefix of `history`, or nil.
    func divergence(authority: Authority, history: [EpochHistoryEntry]) -> String? {
        if history.count < authority.history.count || Array(history.prefix(authority.history.count)) != authority.history {
            return "its epoch history \(Self.describe(authority.history)) is not a prefix of the new primary's \(Self.describe(history))"
        }
        let durable = engine.durableLSN
        let lastEpoch = engine.lastEpoch
        if durable > .zero, let next = history.first(where: { $0.epoch > lastEpoch }), next.startLSN <= durable {
            return "its WAL holds records of epoch \(lastEpoch) up to LSN \(durable), past LSN \(next.startLSN.rawValue - 1) where epoch \(next.epoch) of \(next.primary) branched off"
        }
        return nil
    }

    static func describe(_ history: [EpochHistoryEntry]) -> String {
        "[" + history.map { "\($0.epoch):\($0.primary)@\($0.startLSN)" }.joined(separator: ", ") + "]"
    }

    // MARK: Helpers

    private func parse(_ body: [UInt8]) -> JSONValue? {
        guard let json = try? JSONParser.parse(String(decoding: body, as: UTF8.self)), json.objectValue != nil else { return nil }
        return json
    }

    private func badRequest(_ message: String) -> APIResponse {
        .json(Refusal.request(.badRequest, message).json, status: ErrorCode.badRequest.httpStatus)
    }

    /// A PROMOTE-* refusal: journaled, answered with its rule and message.
    private func refuse(_ rule: String, _ message: String, status: Int = 409, extra: [String: JSONValue] = [:]) -> APIResponse {
        service.journal.record("admin_refused", fields: ["rule": .string(rule), "message": .string(message)], durability: .sync)
        metrics.refused(rule: rule)
        let body: [String: JSONValue] = ["rule": .string(rule), "message": .string(message), "node": .string(config.id.rawValue)]
        return .json(.object(body.merging(extra) { a, _ in a }), status: status)
    }
}
