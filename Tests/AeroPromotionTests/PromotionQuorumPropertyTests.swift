import AeroCore
import AeroPromotion
import AeroTestSupport
import Foundation
import Testing

/// DUR-1 by quorum intersection, checked against its model: a write is acknowledged exactly
/// when the primary and `quorum` members of the epoch's set hold it durably. Generated
/// clusters (2–7 nodes, any eligible set and quorum, any durable positions, any members
/// unreachable or at an older epoch) lose their primary; whatever failover the native rules
/// allow, the candidate holds every acknowledged write. The seed is printed; set
/// AERODB_QUORUM_SEED to replay one.
@Suite struct PromotionQuorumPropertyTests {
    static let rounds = 4_000

    @Test func allowedFailoversHoldEveryAcknowledgedWrite() throws {
        let seed = ProcessInfo.processInfo.environment["AERODB_QUORUM_SEED"].flatMap { UInt64($0) } ?? 20261203
        print("PromotionQuorumPropertyTests seed \(seed) (AERODB_QUORUM_SEED=\(seed) replays it)")
        var rng = SeededRandom(seed: seed)
        var allowed = 0, refused = 0
        for round in 0..<Self.rounds {
            let nodeCount = 2 + rng.next(below: 6)
            let ids = (0..<nodeCount).map { NodeID("n\($0)") }
            let primary = ids[0]
            // Eligible: a random non-empty subset that leaves the primary someone to wait for.
            var eligible = ids.filter { _ in rng.next(below: 3) > 0 }
            if !eligible.contains(where: { $0 != primary }) { eligible.append(ids[1]) }
            let set = Set(eligible).subtracting([primary])
            let quorum = rng.next(below: 4) == 0 ? nil : 1 + rng.next(below: set.count)
            let durability = try #require(try? EpochDurability.derive(eligible: eligible, quorum: quorum, primary: primary).get())
            // Positions: the primary wrote up to `head`; replicas hold prefixes of its log.
            let head = UInt64(10 + rng.next(below: 50))
            var durable: [NodeID: UInt64] = [:]
            for id in ids.dropFirst() { durable[id] = UInt64(rng.next(below: Int(head) + 1)) }
            // The model: the highest acknowledged LSN is the k-th highest among the set.
            let setPositions = durability.set.map { durable[$0]! }.sorted(by: >)
            let acknowledged = setPositions[durability.quorum - 1]
            var nodes = [NodeFacts.unreachable(id: primary, role: .primary)]
            for id in ids.dropFirst() {
                let reach = rng.next(below: 4)
                if reach == 0 {
                    nodes.append(.unreachable(id: id, role: .replica))
                    continue
                }
                // Sometimes a member is still at the older epoch (it never acknowledged in this one)
                // and holds only what it had then.
                let older = reach == 1 && rng.next(below: 2) == 0
                let position = older ? min(durable[id]!, 5) : durable[id]!
                if older { durable[id] = position }
                nodes.append(NodeFacts(
                    id: id, role: .replica, reachable: true, epoch: Epoch(older ? 6 : 7),
                    durableLSN: LSN(position), appliedLSN: LSN(position), ackedLSN: nil,
                    // What the heartbeats carried may lag the truth; never above it.
                    primaryAckedLSN: rng.next(below: 2) == 0 ? nil : LSN(UInt64(rng.next(below: Int(acknowledged) + 1))),
                    wal: WALFacts(continuous: true, corrupt: false), recovering: false, following: older ? nil : primary,
                    lastContactMs: 100, labels: [:]))
            }
            // An older-epoch member never acknowledged in epoch 7: recompute the model without it.
            let trueAcked = durability.set.map { id -> UInt64 in
                let node = nodes.first { $0.id == id }!
                return node.epoch == Epoch(6) ? 0 : durable[id]!
            }.sorted(by: >)[durability.quorum - 1]
            let candidate = ids[1 + rng.next(below: nodeCount - 1)]
            let facts = try FactsDocument(
                request: FactsRequest(kind: .failover, candidate: candidate, requestedBy: "property"),
                cluster: ClusterFacts(name: "p", epoch: Epoch(7), primary: primary, commitMode: .sync, syncReplicas: eligible,
                                      syncQuorum: quorum, durability: durability, epochStartLSN: LSN(1)),
                nodes: nodes, capturedAt: "2026-12-03T10:00:00Z")
            let results = PromotionRules.evaluate(facts)
            let durablePassed = results.first { $0.id == "DUR-1" }!.passed
            if durablePassed {
                allowed += 1
                let held = facts.candidate!.durableLSN!.rawValue
                #expect(held >= trueAcked && trueAcked <= acknowledged,
                        "round \(round) seed \(seed): DUR-1 allowed \(candidate) at \(held) but \(trueAcked) was acknowledged under \(durability); \(facts.json.canonicalJSON)")
            } else {
                refused += 1
            }
        }
        // Both outcomes occur, so the property is not vacuous.
        #expect(allowed > Self.rounds / 20 && refused > Self.rounds / 20, "allowed \(allowed), refused \(refused)")
    }

    /// P13: two attempts for one epoch cannot both gather their promises, for every set size and
    /// quorum up to 7 members — two failovers, a failover and a switchover (two switchovers
    /// both need the fenced primary).
    @Test func promiseQuorumsOfTwoAttemptsAlwaysMeet() {
        for size in 1...7 {
            let set = (0..<size).map { NodeID("s\($0)") }
            for quorum in 1...size {
                let durability = EpochDurability(quorum: quorum, set: set)
                let failover = durability.promisesNeeded(.failover)
                let switchover = durability.promisesNeeded(.switchover)
                #expect(failover >= durability.failoverReachableMin, "a failover's promises cover DUR-1's witnesses")
                #expect(failover <= size && switchover >= 1 && switchover <= size)
                #expect(failover + failover > size, "two failovers meet (|S| \(size), k \(quorum))")
                #expect(failover + switchover > size, "a failover and a switchover meet (|S| \(size), k \(quorum))")
            }
        }
        // The two-node cluster: ANY 1 of the one replica — its own promise is the claim.
        #expect(EpochDurability(quorum: 1, set: ["n2"]).promisesNeeded(.failover) == 1)
        // The default three-node cluster: ANY 1 of two — a failover needs both.
        #expect(EpochDurability(quorum: 1, set: ["n2", "n3"]).promisesNeeded(.failover) == 2)
        #expect(EpochDurability(quorum: 1, set: ["n2", "n3"]).promisesNeeded(.switchover) == 1)
    }
}
