// PromotionSteps.swift — the I/O of each FailoverStateMachine action on the candidate.
//
// One method per action: it does the work (bounded), feeds the result to the machine and
// returns the machine's next action. The driver loop (PromotionCoordinator.run) only
// dispatches. Nothing here decides what comes next, and nothing retries.

import AeroCore
import AeroPromotion
import AeroStorage

struct PromotionSteps: Sendable {
    let coordinator: PromotionCoordinator
    /// The decision id: names this attempt's fence (U6) and its journal events.
    let attempt: String
    let fromEpoch: Epoch
    let oldPrimary: NodeID

    var config: ServerConfig { coordinator.config }
    var engine: StorageEngine { coordinator.engine }
    var client: PeerAdminClient { PeerAdminClient(config: coordinator.config) }

    // MARK: Switchover

    func fence(_ primary: NodeID, epoch: Epoch, machine: inout FailoverStateMachine) async -> FailoverStateMachine.Action {
        if PromotionFaults.fails(.fence) {
            return machine.stepFailed(rule: RuleID.promoteStep1.rawValue, "\(primary) was not fenced: \(PromotionFaults.injected(.fence))")
        }
        switch await client.fence(primary, epoch: epoch, toEpoch: epoch.successor, attempt: attempt) {
        case .success(let finalLSN):
            PromotionFaults.reached(.afterFence)
            return machine.primaryFenced(finalLSN: finalLSN)
        case .failure(let why):
            return machine.stepFailed(rule: RuleID.promoteStep1.rawValue, "\(primary) was not fenced: \(why)")
        }
    }

    /// Waits (bounded) until this node is durable to `lsn`. The bound is a monotonic deadline,
    /// not a count of polls: on a loaded host each poll sleeps longer than asked, and the old
    /// primary stays fenced (no writes) for as long as this waits.
    func catchUp(_ lsn: LSN, machine: inout FailoverStateMachine) async -> FailoverStateMachine.Action {
        let deadlineMs = CommitWaiters.monotonicMs() + config.timeouts.switchoverCatchUpTimeoutMs
        while true {
            let durable = engine.durableLSN
            if durable >= lsn && !PromotionFaults.fails(.catchUp) { return machine.candidateCaughtUp(durableLSN: durable) }
            if CommitWaiters.monotonicMs() >= deadlineMs {
                return machine.stepFailed(rule: RuleID.promoteCatchup1.rawValue,
                    "PROMOTE-CATCHUP-1: \(config.id) did not become durable to \(lsn) within switchover_catch_up_timeout_ms \(config.timeouts.switchoverCatchUpTimeoutMs) (durable to \(engine.durableLSN)); the fence of \(oldPrimary) was lifted")
            }
            try? await Task.sleep(for: .milliseconds(Self.catchUpPollMs))
        }
    }

    /// Poll interval while a switchover waits for the candidate's catch-up.
    static let catchUpPollMs: UInt64 = 1

    // MARK: Failover

    func detach(machine: inout FailoverStateMachine) async -> FailoverStateMachine.Action {
        await coordinator.roles.stopFollowing()
        coordinator.service.installRole(hooks: nil, observer: nil)
        PromotionFaults.reached(.afterDetach)
        return machine.candidateDetached(durableLSN: engine.durableLSN)
    }

    // MARK: Both

    /// C3/P13: this node's own promise, the fenced primary's (it promised when fenced), and the
    /// other members' (asked at once; only the set's count towards `needed`, the others are
    /// asked so that C4 keeps them from following another candidate at this epoch).
    func claim(_ epoch: Epoch, set: [NodeID], needed: Int, fencedPrimary: NodeID?,
               machine: inout FailoverStateMachine) async -> FailoverStateMachine.Action {
        if let why = coordinator.claims.promise(epoch, to: config.id, nodeEpoch: engine.currentEpoch) {
            return machine.claimRefused("PROMOTE-CLAIM-1: \(config.id) cannot promise epoch \(epoch) to itself: \(why)", granted: [])
        }
        var granted = [config.id] + (fencedPrimary.map { [$0] } ?? [])
        let others = config.members.map(\.id).filter { !granted.contains($0) }
        let client = client
        var refusals: [String] = []
        await withTaskGroup(of: (NodeID, PeerCallError?).self) { group in
            for id in others { group.addTask { (id, await client.claim(id, epoch: epoch)) } }
            for await (id, error) in group {
                if let error { refusals.append("\(error)") } else { granted.append(id) }
            }
        }
        let fromSet = Set(granted).intersection(set)
        guard fromSet.count >= needed else {
            let setText = set.map(\.rawValue).joined(separator: ", ")
            return machine.claimRefused(
                "PROMOTE-CLAIM-1: \(fromSet.count) of epoch \(fromEpoch)'s acknowledging set (\(setText)) promised epoch \(epoch) to \(config.id)"
                    + " (\(fromSet.map(\.rawValue).sorted().joined(separator: ", "))); \(needed) must, so that no other candidate can take the same epoch"
                    + " (\(refusals.sorted().joined(separator: "; ")))",
                granted: granted)
        }
        PromotionFaults.reached(.afterClaim)
        return machine.epochClaimed(granted: granted)
    }

    func commit(_ epoch: Epoch, fields: inout [String: JSONValue], machine: inout FailoverStateMachine,
                timings: inout PromotionTimings) async -> FailoverStateMachine.Action {
        await coordinator.roles.stopFollowing()
        coordinator.service.installRole(hooks: nil, observer: nil)
        timings.mark("commit.stop_following")
        let durability: EpochDurability?
        switch NodeRoles.nextDurability(config: config) {
        case nil: durability = nil
        case .success(let value)?: durability = value
        case .failure(let problem)?:
            // DUR-3 refuses this before any change; reaching it means the config changed under us.
            return machine.stepFailed(rule: RuleID.promoteStep1.rawValue, "epoch \(epoch) would have no durability: \(problem)")
        }
        do {
            let entry = try await engine.promote(to: epoch, durability: durability)
            timings.mark("commit.authority")
            PromotionFaults.reached(.afterAuthority)
            try coordinator.service.journal.append("promotion_committed", fields: [
                "id": .string(attempt), "epoch": .integer(Int64(epoch.rawValue)), "start_lsn": .integer(Int64(entry.startLSN.rawValue)),
                "durability": durability?.json ?? .null,
            ], durability: .sync)
            timings.mark("commit.journal")
            let hooks = try await coordinator.roles.startPrimary()
            coordinator.service.installRole(hooks: hooks, observer: nil)
            timings.mark("commit.start_primary")
            PromotionFaults.reached(.afterPrimaryStart)
            fields["start_lsn"] = .integer(Int64(entry.startLSN.rawValue))
            fields["durability"] = durability?.json ?? .null
            return machine.authorityCommitted(epoch: epoch)
        } catch {
            let committed = engine.authority.epoch == epoch
            return machine.stepFailed(rule: RuleID.promoteStep1.rawValue, committed
                ? "the authority for epoch \(epoch) is committed on \(config.id), but its primary role could not start: \(error)"
                : "writing the authority for epoch \(epoch) failed: \(error)")
        }
    }

    /// Rule 7: re-point the others, then verify service under the new epoch's durability.
    func verifyService(_ epoch: Epoch, fields: inout [String: JSONValue], machine: inout FailoverStateMachine,
                       timings: inout PromotionTimings) async -> FailoverStateMachine.Action {
        let repointed = await repoint(epoch: epoch, fields: &fields)
        timings.mark("verify.repoint")
        defer { timings.mark("verify.first_record") }
        if PromotionFaults.fails(.verify) {
            return machine.serviceUnmet(rule: RuleID.promoteVerify1.rawValue, message: "the first write of epoch \(epoch) was not verified: \(PromotionFaults.injected(.verify))")
        }
        let authority = engine.authority
        guard authority.role == .primary, authority.epoch == epoch, let entry = authority.history.last, entry.epoch == epoch,
              engine.durableLSN >= entry.startLSN, engine.lastEpoch == epoch else {
            return machine.serviceUnmet(rule: RuleID.promoteVerify1.rawValue,
                message: "\(config.id) is not the durable primary of epoch \(epoch) after the commit (authority: \(authority.role.rawValue) of epoch \(authority.epoch), durable to \(engine.durableLSN)): inspect it before anything else")
        }
        guard let hooks = coordinator.service.primaryHooks, coordinator.roles.isPrimaryRunning || config.members.count <= 1 else {
            return machine.serviceUnmet(rule: RuleID.promoteVerify1.rawValue, message: "the primary role of epoch \(epoch) did not start on \(config.id)")
        }
        guard let waiters = hooks.waiters, let durability = waiters.durability else {
            return machine.serviceVerified("async mode: its first record (LSN \(entry.startLSN)) is durable on \(config.id)")
        }
        // Those re-pointed, or streaming, are who can acknowledge now. A member whose follow
        // answer came late (a loaded host) may still connect: wait for it within the quorum
        // grace window (`timeouts.quorum_grace_ms`), bounded, before saying the quorum is unmet.
        var able = Set(repointed).union(hooks.streamingReplicas?() ?? []).intersection(durability.set)
        let graceDeadlineMs = CommitWaiters.monotonicMs() + config.timeouts.quorumGraceMs
        while able.count < durability.quorum && CommitWaiters.monotonicMs() < graceDeadlineMs {
            try? await Task.sleep(for: .milliseconds(KVService.quorumPollMs))
            able.formUnion((hooks.streamingReplicas?() ?? []).intersection(durability.set))
        }
        guard able.count >= durability.quorum else {
            let absent = durability.set.filter { !able.contains($0) }
            let commands = absent.map { "`aerodb rejoin --addr \(client.member($0)?.http.description ?? $0.rawValue) --primary-addr \(config.http)`" }
            return machine.serviceUnmet(rule: ErrorCode.quorumUnmet.rawValue,
                message: "REPL-QUORUM-1: epoch \(epoch) acknowledges with \(durability), and only \(able.count) of them (\(able.isEmpty ? "none" : able.map(\.rawValue).sorted().joined(separator: ", "))) could be re-pointed; writes are refused at once until \(durability.quorum - able.count) more replicate: start \(absent.map(\.rawValue).joined(separator: " or ")) and rejoin it (\(commands.joined(separator: ", "))), or `aerodb reseed` it if it diverged")
        }
        let startedMs = CommitWaiters.monotonicMs()
        switch await waiters.waitCommitted(entry.startLSN) {
        case .committed:
            let tookMs = CommitWaiters.monotonicMs() - startedMs
            return machine.serviceVerified("its first record (LSN \(entry.startLSN)) was acknowledged under \(durability) within \(tookMs) ms")
        case .timedOut(let missing):
            return machine.serviceUnmet(rule: RuleID.promoteVerify1.rawValue,
                message: "its first record (LSN \(entry.startLSN)) was not acknowledged under \(durability) within \(waiters.timeoutMs) ms (not stored by \(missing.map(\.rawValue).joined(separator: ", "))); check those members and `aerodb status` on \(config.id)")
        case .backlogFull, .failed:
            return machine.serviceUnmet(rule: RuleID.promoteVerify1.rawValue, message: "its first record (LSN \(entry.startLSN)) could not be awaited (the primary role stopped)")
        }
    }

    /// Tells every other member to follow this node at `epoch`; returns who did.
    private func repoint(epoch: Epoch, fields: inout [String: JSONValue]) async -> [NodeID] {
        let history = engine.authority.history
        let client = client
        var repointed: [NodeID] = [], refused: [JSONValue] = [], unreachable: [String] = []
        await withTaskGroup(of: (NodeID, PeerAdminClient.FollowAnswer).self) { group in
            for member in config.members where member.id != config.id {
                group.addTask { (member.id, await client.follow(member.id, epoch: epoch, history: history)) }
            }
            for await (id, answer) in group {
                switch answer {
                case .repointed: repointed.append(id)
                case .noAnswer: unreachable.append(id.rawValue)
                case .refused(let message): refused.append(.object(["node": .string(id.rawValue), "message": .string(message)]))
                }
            }
        }
        fields["repointed"] = .array(repointed.map(\.rawValue).sorted().map { .string($0) })
        fields["unreachable"] = .array(unreachable.sorted().map { .string($0) })
        fields["repoint_refused"] = .array(refused)
        return repointed
    }

    // MARK: Undo (P3)

    func undo(_ action: UndoAction) async {
        switch action {
        case .releasePromises(let epoch, let granted):
            coordinator.claims.release(epoch, candidate: config.id)
            for id in granted where id != config.id { _ = await client.release(id, epoch: epoch) }
        case .unfencePrimary(let primary, let epoch):
            _ = await client.unfence(primary, epoch: epoch, attempt: attempt)
        case .resumeFollowing:
            _ = coordinator.roles.startFollowing()
            coordinator.service.installRole(hooks: nil, observer: coordinator.roles.observer)
        }
    }
}
