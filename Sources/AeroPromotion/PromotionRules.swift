// PromotionRules.swift — the native safety rules. Frozen: ids are stable, messages cite facts.
//
// Each rule reads only the facts document and returns a `RuleResult` with the JSON paths and
// values it read. Rules run in `allIDs` order and every rule is always reported. Some rules
// need a premise another rule establishes; when the premise is missing the rule is reported
// as failed and *not evaluated*, with a message naming the rule that explains why, and the
// refusal's reasons cite only the rule that failed on its own:
//
//   premise                                 established by   needed by
//   a candidate is named and in `nodes`     REQ-1            LIVE-1 ROLE-1 EPOCH-1 WAL-1 DUR-1 DUR-2 DUR-3 POLICY-1
//   the candidate reported its state        LIVE-1           ROLE-1 EPOCH-1 WAL-1 DUR-1 DUR-2 DUR-3 POLICY-1
//   the request kind is known               REQ-1            DUR-1 FENCE-1
//
// LIVE-1 is not in the issue's list; it is added because an unreachable candidate reported
// nothing, and every other candidate rule would otherwise fail with a vaguer message.
// docs/promotion-rules.md lists every rule and every way each one refuses; a test checks
// that its table and `allIDs` are the same set.
//
// Invariants (docs/invariants.md, "Promotion"):
//   P12   Every native rule that can refuse has a stable id (a `RuleID` case), a test that
//         trips it, and a row in promotion-rules.md's failure-case table.
//   DUR-Q A failover these rules allow holds every write acknowledged under "durable on k of
//         the set" (`failoverDurability`, for DUR-1; property-tested).
import AeroCore

public enum PromotionRules {
    /// Every native rule id, in evaluation and reporting order.
    public static let allIDs = [RuleID.req1.rawValue, RuleID.live1.rawValue, RuleID.role1.rawValue, RuleID.epoch1.rawValue, RuleID.wal1.rawValue, RuleID.dur1.rawValue, RuleID.dur2.rawValue, RuleID.dur3.rawValue, RuleID.policy1.rawValue, RuleID.fence1.rawValue]

    /// A message lists at most this many offending nodes, then "and N more": a 1,000-node
    /// document must not produce a 1,000-name message. The facts map still has them all.
    public static let messageNodesMax = 5

    /// P6's bar for a failover: what the candidate must be durable to once detached — its own
    /// durable position and every position DUR-1 compared it with (acknowledged positions,
    /// the reporting members of the epoch's set, the end of the log before the epoch).
    public static func failoverRequiredLSN(_ facts: FactsDocument) -> LSN {
        var required = facts.candidate?.durableLSN ?? .zero
        for node in facts.nodes where node.reachable {
            for lsn in [node.ackedLSN, node.primaryAckedLSN].compactMap({ $0 }) where lsn > required { required = lsn }
        }
        for id in facts.cluster.durability?.set ?? [] {
            if let node = facts.node(id), node.reachable, node.epoch == facts.cluster.epoch, let lsn = node.durableLSN, lsn > required {
                required = lsn
            }
        }
        if let start = facts.cluster.epochStartLSN, start.rawValue > 1, LSN(start.rawValue - 1) > required { required = LSN(start.rawValue - 1) }
        return required
    }

    /// Evaluates every native rule against `facts`, in `allIDs` order.
    public static func evaluate(_ facts: FactsDocument) -> [RuleResult] {
        let context = RuleContext(facts: facts)
        let results = [
            context.req1(), context.live1(), context.role1(), context.epoch1(), context.wal1(),
            context.dur1(), context.dur2(), context.dur3(), context.policy1(), context.fence1(),
        ]
        precondition(results.map(\.id) == allIDs, "rules must report in allIDs order")
        return results
    }
}

/// What every rule may read, computed once per decision.
struct RuleContext {
    let facts: FactsDocument
    let kind: PromotionKind?
    /// Index of the candidate in `facts.nodes` when it is named and present.
    let candidateIndex: Int?
    let primaryIndex: Int

    init(facts: FactsDocument) {
        self.facts = facts
        self.kind = facts.request.promotionKind
        self.candidateIndex = facts.request.candidate.flatMap(facts.index(of:))
        self.primaryIndex = facts.index(of: facts.cluster.primary)!  // validated by FactsDocument
    }

    static func path(_ index: Int, _ field: String) -> String {
        index < nodePathPrefixes.count ? nodePathPrefixes[index] + field : "$.nodes[\(index)].\(field)"
    }

    /// "$.nodes[i]." for the first nodes, made once: rules name several fields of every node
    /// per decision, and interpolating each path was a fifth of the rules' instructions.
    static let nodePathPrefixes: [String] = (0..<1_024).map { "$.nodes[\($0)]." }

    static func integer(_ value: UInt64?) -> JSONValue { value.map { .integer(Int64($0)) } ?? .null }
    static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    static func bool(_ value: Bool?) -> JSONValue { value.map(JSONValue.bool) ?? .null }

    /// "c, d, e and 3 more" with at most `messageNodesMax` names.
    static func list(_ names: [String]) -> String {
        let shown = names.prefix(PromotionRules.messageNodesMax).joined(separator: ", ")
        let rest = names.count - min(names.count, PromotionRules.messageNodesMax)
        return rest > 0 ? "\(shown) and \(rest) more" : shown
    }

    /// The candidate when the rule's premises hold; otherwise the not-evaluated result.
    func reachableCandidate(_ id: String) -> Result<(index: Int, node: NodeFacts), SkippedRule> {
        guard let index = candidateIndex else {
            return .failure(SkippedRule(id: id, message: "not evaluated: no candidate present in the nodes (see REQ-1)"))
        }
        let node = facts.nodes[index]
        guard node.reachable else {
            return .failure(SkippedRule(id: id, message: "not evaluated: candidate \(node.id) is unreachable (see LIVE-1)"))
        }
        return .success((index, node))
    }

    // MARK: REQ-1 — the request is well formed.

    func req1() -> RuleResult {
        let request = facts.request
        let read: [String: JSONValue] = [
            "$.request.kind": .string(request.kind),
            "$.request.candidate": Self.string(request.candidate?.rawValue),
        ]
        var problems: [String] = []
        if kind == nil {
            problems.append("request kind \"\(request.kind)\" is not known; use \"failover\" or \"switchover\"")
        }
        if let candidate = request.candidate {
            if candidateIndex == nil {
                problems.append("candidate \"\(candidate)\" is not among the \(facts.nodes.count) nodes")
            }
        } else {
            problems.append("the request names no candidate")
        }
        if problems.isEmpty {
            return RuleResult(id: RuleID.req1.rawValue, passed: true,
                              message: "\(request.kind) to candidate \(request.candidate!) requested", facts: read)
        }
        return RuleResult(id: RuleID.req1.rawValue, passed: false, message: problems.joined(separator: "; "), facts: read)
    }

    // MARK: LIVE-1 — the candidate reported its state.

    func live1() -> RuleResult {
        guard let index = candidateIndex else {
            return SkippedRule(id: RuleID.live1.rawValue, message: "not evaluated: no candidate present in the nodes (see REQ-1)").result
        }
        let node = facts.nodes[index]
        let read: [String: JSONValue] = [Self.path(index, "reachable"): .bool(node.reachable)]
        if node.reachable {
            return RuleResult(id: RuleID.live1.rawValue, passed: true, message: "candidate \(node.id) is reachable", facts: read)
        }
        return RuleResult(id: RuleID.live1.rawValue, passed: false,
                          message: "candidate \(node.id) was not reachable: nothing it would report is known", facts: read)
    }

    // MARK: ROLE-1 — the candidate is a replica following the current primary.

    func role1() -> RuleResult {
        let candidate: (index: Int, node: NodeFacts)
        switch reachableCandidate(RuleID.role1.rawValue) {
        case .failure(let skipped): return skipped.result
        case .success(let value): candidate = value
        }
        let (index, node) = candidate
        let primary = facts.cluster.primary
        let read: [String: JSONValue] = [
            "$.cluster.primary": .string(primary.rawValue),
            Self.path(index, "id"): .string(node.id.rawValue),
            Self.path(index, "role"): .string(node.role.rawValue),
            Self.path(index, "following"): Self.string(node.following?.rawValue),
        ]
        var problems: [String] = []
        if node.id == primary {
            problems.append("\(node.id) is the current primary; only a replica can be promoted")
        }
        if node.role != .replica {
            problems.append("\(node.id) is configured as \(node.role.rawValue), not replica")
        }
        if let following = node.following {
            if following != primary { problems.append("\(node.id) follows \(following), not the current primary \(primary)") }
        } else if node.id != primary {
            problems.append("\(node.id) follows no node, not the current primary \(primary)")
        }
        if problems.isEmpty {
            return RuleResult(id: RuleID.role1.rawValue, passed: true, message: "\(node.id) is a replica following the primary \(primary)", facts: read)
        }
        return RuleResult(id: RuleID.role1.rawValue, passed: false, message: problems.joined(separator: "; "), facts: read)
    }

    // MARK: EPOCH-1 — the candidate is of the current epoch and no promotion is under way.

    func epoch1() -> RuleResult {
        let candidate: (index: Int, node: NodeFacts)
        switch reachableCandidate(RuleID.epoch1.rawValue) {
        case .failure(let skipped): return skipped.result
        case .success(let value): candidate = value
        }
        let clusterEpoch = facts.cluster.epoch
        var read: [String: JSONValue] = [
            "$.cluster.epoch": .integer(Int64(clusterEpoch.rawValue)),
            "$.cluster.primary": .string(facts.cluster.primary.rawValue),
        ]
        read.reserveCapacity(read.count + 3 * facts.nodes.count)  // no rehash while filling
        var problems: [String] = []
        let candidateEpoch = candidate.node.epoch!  // reachable nodes report it (validated)
        // Epoch 0: the candidate was never part of an epoch (it just started and has not heard
        // from its primary yet). That is the whole story; "a promotion already happened"
        // would send the operator looking for a promotion nobody made.
        if candidateEpoch.rawValue == 0 {
            read[Self.path(candidate.index, "epoch")] = .integer(0)
            read[Self.path(candidate.index, "last_contact_ms")] = Self.integer(candidate.node.lastContactMs)
            return RuleResult(id: RuleID.epoch1.rawValue, passed: false,
                              message: "candidate \(candidate.node.id) is at epoch 0: it has not yet heard from any primary (a node that just started); ask again once it follows its primary (`aerodb status` on it shows its epoch and last_contact_ms)",
                              facts: read)
        }
        if candidateEpoch != clusterEpoch {
            problems.append("candidate \(candidate.node.id) is at epoch \(candidateEpoch), the cluster at epoch \(clusterEpoch)")
        }
        var higher: [String] = []
        var otherPrimaries: [String] = []
        for (index, node) in facts.nodes.enumerated() {
            read[Self.path(index, "reachable")] = .bool(node.reachable)
            guard node.reachable else { continue }
            let epoch = node.epoch!
            read[Self.path(index, "epoch")] = .integer(Int64(epoch.rawValue))
            read[Self.path(index, "role")] = .string(node.role.rawValue)
            if epoch > clusterEpoch { higher.append("\(node.id) (epoch \(epoch))") }
            if node.role == .primary && node.id != facts.cluster.primary { otherPrimaries.append("\(node.id)") }
        }
        if !higher.isEmpty {
            problems.append("reachable node(s) \(Self.list(higher)) report an epoch above the cluster's \(clusterEpoch): a promotion already happened or is under way")
        }
        if !otherPrimaries.isEmpty {
            problems.append("reachable node(s) \(Self.list(otherPrimaries)) claim to be primary, but cluster.primary is \(facts.cluster.primary): a promotion already happened or is under way")
        }
        if problems.isEmpty {
            return RuleResult(id: RuleID.epoch1.rawValue, passed: true,
                              message: "candidate \(candidate.node.id) is at the cluster's epoch \(clusterEpoch); no reachable node is ahead or claims to be another primary",
                              facts: read)
        }
        return RuleResult(id: RuleID.epoch1.rawValue, passed: false, message: problems.joined(separator: "; "), facts: read)
    }

    // MARK: WAL-1 — the candidate's log is whole and it is not recovering.

    func wal1() -> RuleResult {
        let candidate: (index: Int, node: NodeFacts)
        switch reachableCandidate(RuleID.wal1.rawValue) {
        case .failure(let skipped): return skipped.result
        case .success(let value): candidate = value
        }
        let (index, node) = candidate
        let wal = node.wal!  // reachable nodes report it (validated)
        let recovering = node.recovering!
        let read: [String: JSONValue] = [
            Self.path(index, "wal.continuous"): .bool(wal.continuous),
            Self.path(index, "wal.corrupt"): .bool(wal.corrupt),
            Self.path(index, "recovering"): .bool(recovering),
        ]
        var problems: [String] = []
        if !wal.continuous { problems.append("\(node.id)'s WAL has a gap (wal.continuous is false)") }
        if wal.corrupt { problems.append("\(node.id)'s WAL failed a checksum (wal.corrupt is true)") }
        if recovering { problems.append("\(node.id) is still recovering") }
        if problems.isEmpty {
            return RuleResult(id: RuleID.wal1.rawValue, passed: true, message: "\(node.id)'s WAL is continuous and sound; it is not recovering", facts: read)
        }
        return RuleResult(id: RuleID.wal1.rawValue, passed: false, message: problems.joined(separator: "; "), facts: read)
    }

    // MARK: DUR-1 — no acknowledged write can be lost.

    func dur1() -> RuleResult {
        let candidate: (index: Int, node: NodeFacts)
        switch reachableCandidate(RuleID.dur1.rawValue) {
        case .failure(let skipped): return skipped.result
        case .success(let value): candidate = value
        }
        guard let kind else {
            return SkippedRule(id: RuleID.dur1.rawValue, message: "not evaluated: the request kind is unknown (see REQ-1)").result
        }
        let (index, node) = candidate
        let durable = node.durableLSN!  // reachable nodes report it (validated)
        var read: [String: JSONValue] = [
            "$.request.kind": .string(kind.rawValue),
            Self.path(index, "durable_lsn"): .integer(Int64(durable.rawValue)),
        ]
        switch kind {
        case .switchover:
            let primary = facts.nodes[primaryIndex]
            read[Self.path(primaryIndex, "reachable")] = .bool(primary.reachable)
            guard primary.reachable, let primaryDurable = primary.durableLSN else {
                return RuleResult(id: RuleID.dur1.rawValue, passed: false,
                                  message: "a switchover waits for the primary's final position, but the primary \(primary.id) is unreachable (see FENCE-1)",
                                  facts: read)
            }
            read[Self.path(primaryIndex, "durable_lsn")] = .integer(Int64(primaryDurable.rawValue))
            read[Self.path(primaryIndex, "acked_lsn")] = Self.integer(primary.ackedLSN?.rawValue)
            let lag = primaryDurable > durable ? primaryDurable.rawValue - durable.rawValue : 0
            return RuleResult(id: RuleID.dur1.rawValue, passed: true,
                              message: "switchover: \(node.id) is durable to \(durable), the primary \(primary.id) to \(primaryDurable) (lag \(lag)); the plan fences \(primary.id) and waits until \(node.id) is durable to its final position",
                              facts: read)
        case .failover:
            return failoverDurability(index: index, node: node, durable: durable, read: read)
        }
    }

    func failoverDurability(index: Int, node: NodeFacts, durable: LSN, read initialRead: [String: JSONValue]) -> RuleResult {
        var read = initialRead
        read.reserveCapacity(read.count + 4 + 3 * facts.nodes.count)  // no rehash while filling
        let cluster = facts.cluster
        read["$.cluster.commit_mode"] = .string(cluster.commitMode.rawValue)
        read["$.cluster.durability"] = cluster.durability?.json ?? .null
        var problems: [String] = []
        var witnesses = ""
        if cluster.commitMode != .sync || cluster.durability == nil {
            problems.append("epoch \(cluster.epoch) runs in async mode: its primary \(cluster.primary) acknowledged writes that no other node may hold, so no failover can be proven safe; restart \(cluster.primary) (its data is intact if its disk is), or run the cluster in sync mode")
        } else if let durability = cluster.durability {
            // Quorum intersection: enough of the epoch's set reachable that one of them holds
            // every acknowledged write, and the candidate at least as advanced as all of them.
            var reachable: [(id: NodeID, durable: LSN)] = []
            var missing: [String] = []
            for id in durability.set {
                guard let peerIndex = facts.index(of: id) else { continue }  // validated: present
                let peer = facts.nodes[peerIndex]
                read[Self.path(peerIndex, "reachable")] = .bool(peer.reachable)
                guard peer.reachable, let epoch = peer.epoch, let peerDurable = peer.durableLSN else {
                    missing.append("\(id) (unreachable)")
                    continue
                }
                read[Self.path(peerIndex, "epoch")] = .integer(Int64(epoch.rawValue))
                read[Self.path(peerIndex, "durable_lsn")] = .integer(Int64(peerDurable.rawValue))
                guard epoch == cluster.epoch else {
                    missing.append("\(id) (at epoch \(epoch), not \(cluster.epoch))")
                    continue
                }
                reachable.append((id, peerDurable))
            }
            let needed = durability.failoverReachableMin
            if reachable.count < needed {
                problems.append("epoch \(cluster.epoch) acknowledges with \(durability): only \(reachable.count) of them reported at epoch \(cluster.epoch) (\(reachable.isEmpty ? "none" : Self.list(reachable.map(\.id.rawValue)))), but \(needed) must, so that one of them surely holds every acknowledged write; not reporting: \(Self.list(missing)); bring \(needed - reachable.count == 1 ? "one of them" : "\(needed - reachable.count) of them") back, then ask again")
            } else if let best = reachable.max(by: { ($0.durable, $1.id) < ($1.durable, $0.id) }), best.durable > durable {
                problems.append("\(best.id), of epoch \(cluster.epoch)'s set \(durability), is durable to \(best.durable), ahead of \(node.id) at \(durable): it may hold acknowledged writes \(node.id) lacks; name \(best.id) as the candidate")
            } else {
                witnesses = "; \(reachable.count) of \(durability) reported (\(needed) needed, so one of them holds every acknowledged write) and \(node.id) is at or above each"
            }
        }
        // The highest acknowledged position any node knows of, and who knows it.
        var highest: (lsn: LSN, path: String)?
        for (peerIndex, peer) in facts.nodes.enumerated() where peer.reachable {
            for (field, value) in [("acked_lsn", peer.ackedLSN), ("primary_acked_lsn", peer.primaryAckedLSN)] {
                let path = Self.path(peerIndex, field)
                read[path] = Self.integer(value?.rawValue)
                if let value, value > (highest?.lsn ?? LSN.zero) || highest == nil { highest = (value, path) }
            }
        }
        if let highest, highest.lsn > durable {
            problems.append("\(node.id) is durable to \(durable), but position \(highest.lsn) was acknowledged (\(highest.path)): acknowledged writes would be lost; name a node durable to at least \(highest.lsn)")
        }
        // Everything before the epoch began: its primary had it all when it wrote the epoch's
        // first record, and writes acknowledged in earlier epochs are among it.
        read["$.cluster.epoch_start_lsn"] = Self.integer(cluster.epochStartLSN?.rawValue)
        if let start = cluster.epochStartLSN, start.rawValue > 1, durable.rawValue < start.rawValue - 1 {
            problems.append("\(node.id) is durable to \(durable), below the end of the log before epoch \(cluster.epoch) began (\(start.rawValue - 1)): it lacks records acknowledged in earlier epochs; name a node durable to at least \(start.rawValue - 1)")
        }
        if problems.isEmpty {
            let known = highest.map { "the highest acknowledged position known, \($0.lsn) (\($0.path))" } ?? "every acknowledged position known (none is reported)"
            return RuleResult(id: RuleID.dur1.rawValue, passed: true,
                              message: "\(node.id) is durable to \(durable), at or above \(known)\(witnesses)",
                              facts: read)
        }
        return RuleResult(id: RuleID.dur1.rawValue, passed: false, message: problems.joined(separator: "; "), facts: read)
    }

    // MARK: DUR-2 — no reachable replica of the current epoch is ahead of the candidate.

    func dur2() -> RuleResult {
        let candidate: (index: Int, node: NodeFacts)
        switch reachableCandidate(RuleID.dur2.rawValue) {
        case .failure(let skipped): return skipped.result
        case .success(let value): candidate = value
        }
        let (index, node) = candidate
        let durable = node.durableLSN!  // reachable nodes report it (validated)
        var read: [String: JSONValue] = [
            "$.cluster.epoch": .integer(Int64(facts.cluster.epoch.rawValue)),
            Self.path(index, "durable_lsn"): .integer(Int64(durable.rawValue)),
        ]
        if kind == .switchover {
            read["$.request.kind"] = .string("switchover")
            return RuleResult(id: RuleID.dur2.rawValue, passed: true,
                              message: "switchover: \(node.id) catches up to the fenced primary's final position, which is at or above every replica's",
                              facts: read)
        }
        read.reserveCapacity(read.count + facts.nodes.count)  // no rehash while filling
        var ahead: [NodeFacts] = []
        for (peerIndex, peer) in facts.nodes.enumerated()
        where peerIndex != index && peer.reachable && peer.role == .replica && peer.epoch == facts.cluster.epoch {
            let peerDurable = peer.durableLSN!
            read[Self.path(peerIndex, "durable_lsn")] = .integer(Int64(peerDurable.rawValue))
            if peerDurable > durable { ahead.append(peer) }
        }
        guard !ahead.isEmpty else {
            return RuleResult(id: RuleID.dur2.rawValue, passed: true,
                              message: "no reachable replica of epoch \(facts.cluster.epoch) is ahead of \(node.id) (durable to \(durable))",
                              facts: read)
        }
        // Most advanced first; ties by id so the message is deterministic. The first holds every
        // record any reachable replica holds, so it passes this rule and DUR-1's comparison.
        ahead.sort { ($0.durableLSN!, $1.id) > ($1.durableLSN!, $0.id) }
        let best = ahead[0]
        var message = "\(best.id) is ahead of the candidate \(node.id): durable to \(best.durableLSN!) against \(durable); promoting \(node.id) would leave records \(best.id) holds on no primary (\(best.id) would need a re-seed); name \(best.id) as the candidate, which holds every record a reachable replica holds"
        if ahead.count > 1 {
            message += " (also ahead: \(Self.list(ahead.dropFirst().map { "\($0.id) at \($0.durableLSN!)" })))"
        }
        return RuleResult(id: RuleID.dur2.rawValue, passed: false, message: message, facts: read)
    }

    // MARK: DUR-3 — the new epoch can have a durability.

    func dur3() -> RuleResult {
        let candidate: (index: Int, node: NodeFacts)
        switch reachableCandidate(RuleID.dur3.rawValue) {
        case .failure(let skipped): return skipped.result
        case .success(let value): candidate = value
        }
        let cluster = facts.cluster
        var read: [String: JSONValue] = [
            "$.cluster.commit_mode": .string(cluster.commitMode.rawValue),
            "$.cluster.sync_replicas": .array(cluster.syncReplicas.map { .string($0.rawValue) }),
            "$.cluster.sync_quorum": cluster.syncQuorum.map { .integer(Int64($0)) } ?? .null,
        ]
        guard let next = cluster.nextDurability(primary: candidate.node.id) else {
            return RuleResult(id: RuleID.dur3.rawValue, passed: true,
                              message: "async mode: epoch \(cluster.epoch.successor) acknowledges a write once \(candidate.node.id) stored it", facts: read)
        }
        switch next {
        case .failure(let problem):
            return RuleResult(id: RuleID.dur3.rawValue, passed: false,
                              message: "epoch \(cluster.epoch.successor) would have no durability: \(problem); add members to sync_replicas (or lower sync_quorum) in every node's configuration and restart them, or name another candidate",
                              facts: read)
        case .success(let durability):
            var up: [String] = []
            for id in durability.set {
                guard let peerIndex = facts.index(of: id) else { continue }
                read[Self.path(peerIndex, "reachable")] = .bool(facts.nodes[peerIndex].reachable)
                if facts.nodes[peerIndex].reachable { up.append(id.rawValue) }
            }
            let now = up.count >= durability.quorum
                ? "\(up.count) of them reachable now"
                : "only \(up.count) of them reachable now, so writes are refused (REPL-QUORUM-1) until \(durability.quorum - up.count) more rejoin"
            return RuleResult(id: RuleID.dur3.rawValue, passed: true,
                              message: "epoch \(cluster.epoch.successor) will acknowledge with \(durability) (\(now))", facts: read)
        }
    }

    // MARK: FENCE-1 — the old primary cannot go on acknowledging writes.

    func fence1() -> RuleResult {
        guard let kind else {
            return SkippedRule(id: RuleID.fence1.rawValue, message: "not evaluated: the request kind is unknown (see REQ-1)").result
        }
        let primary = facts.nodes[primaryIndex]
        let read: [String: JSONValue] = [
            "$.request.kind": .string(kind.rawValue),
            "$.cluster.primary": .string(primary.id.rawValue),
            Self.path(primaryIndex, "reachable"): .bool(primary.reachable),
        ]
        switch (kind, primary.reachable) {
        case (.failover, false):
            return RuleResult(id: RuleID.fence1.rawValue, passed: true,
                              message: "the primary \(primary.id) is unreachable; the new epoch fences it out", facts: read)
        case (.failover, true):
            return RuleResult(id: RuleID.fence1.rawValue, passed: false,
                              message: "the primary \(primary.id) is reachable, so a failover would leave it accepting writes; request a switchover, which demotes it first",
                              facts: read)
        case (.switchover, true):
            return RuleResult(id: RuleID.fence1.rawValue, passed: true,
                              message: "the primary \(primary.id) is reachable and will be demoted before the candidate takes over", facts: read)
        case (.switchover, false):
            return RuleResult(id: RuleID.fence1.rawValue, passed: false,
                              message: "a switchover demotes the primary \(primary.id) first, but it is unreachable; if it is gone, request a failover",
                              facts: read)
        }
    }
}

/// A rule whose premise another rule refuted.
struct SkippedRule: Error {
    let id: String
    let message: String
    var result: RuleResult { RuleResult(id: id, passed: false, evaluated: false, message: message, facts: [:]) }
}
