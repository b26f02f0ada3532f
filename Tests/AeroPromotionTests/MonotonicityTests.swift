import AeroTestSupport
import AeroCore
import AeroPolicy
import AeroPromotion
import Foundation
import Testing


/// Random facts documents around the interesting boundaries: about half start from a
/// document that passes every rule and change one or two things.
struct FactsGenerator {
    var rng: SeededRandom

    mutating func chance(_ percent: UInt64) -> Bool { UInt64.random(in: 0..<100, using: &rng) < percent }

    mutating func document() -> FactsDocument {
        let nodeCount = Int.random(in: 2...7, using: &rng)
        let epoch = Epoch(UInt64.random(in: 1...9, using: &rng))
        let kind: PromotionKind = chance(50) ? .failover : .switchover
        let pristine = chance(50)
        let primary = NodeID("a")
        var nodes: [NodeFacts] = []
        let head = UInt64.random(in: 100...10_000, using: &rng)
        for index in 0..<nodeCount {
            let id = NodeID(String(UnicodeScalar(UInt8(97 + index))))
            let isPrimary = index == 0
            let reachable = isPrimary ? (kind == .switchover) != (!pristine && chance(20)) : (pristine || chance(85))
            let zone = ["eu-1a", "eu-1b", "eu-1c"][Int.random(in: 0...2, using: &rng)]
            guard reachable else {
                nodes.append(.unreachable(id: id, role: isPrimary ? .primary : .replica, labels: ["zone": zone]))
                continue
            }
            let behind = index == 1 && pristine ? 0 : UInt64.random(in: (pristine ? 1 : 0)...50, using: &rng)
            let durable = LSN(head - behind)
            let sound = pristine || chance(85)
            nodes.append(NodeFacts(
                id: id,
                role: isPrimary || (!pristine && chance(5)) ? .primary : .replica,
                reachable: true,
                epoch: pristine || chance(90) ? epoch : Epoch(epoch.rawValue + UInt64.random(in: 0...2, using: &rng) - 1),
                durableLSN: isPrimary ? LSN(head + 5) : durable,
                appliedLSN: durable,
                ackedLSN: isPrimary ? LSN(head) : nil,
                primaryAckedLSN: isPrimary ? nil : LSN(durable.rawValue - min(durable.rawValue, UInt64.random(in: 0...10, using: &rng))),
                wal: WALFacts(continuous: sound || chance(50), corrupt: !sound && chance(50)),
                recovering: !sound && chance(30),
                following: isPrimary ? nil : (pristine || chance(90) ? primary : "zz"),
                lastContactMs: isPrimary ? nil : UInt64.random(in: 0...10_000, using: &rng),
                labels: ["zone": zone],
                // One policy set everywhere, except now and then (POLICY-1 refuses those).
                policySetDigest: pristine || chance(95) ? FactsFixtures.fixturePolicySetDigest : "other",
                engineVersion: AeroVersion.string))
        }
        let candidate: NodeID? = pristine || chance(85) ? NodeID(String(UnicodeScalar(UInt8(97 + Int.random(in: pristine ? 1...1 : 0...(nodeCount - 1), using: &rng))))) : nil
        let cluster = ClusterFacts(
            name: "gen", epoch: epoch, primary: primary,
            commitMode: pristine || chance(80) ? .sync : .async,
            syncReplicas: pristine || chance(80) ? ["b"] : [],
            labels: chance(20) ? ["change_freeze": "true"] : [:])
        let request = FactsRequest(kind: pristine || chance(95) ? kind.rawValue : "takeover", candidate: candidate,
                                   requestedBy: chance(80) ? "ops-oncall" : nil)
        do {
            return try FactsDocument(request: request, cluster: cluster, nodes: nodes, capturedAt: "2026-11-26T10:00:00Z")
        } catch {
            preconditionFailure("the generator made an invalid document: \(error)")
        }
    }
}

/// Policies that refuse on conditions of the facts, object never, or fail in assorted ways.
let policyPool: [PolicySource] = [
    noObjection, freeze, twoReasons, broken,
    policy("freeze-label", "  if facts.cluster.labels.change_freeze == 'true' then return 'frozen' end"),
    policy("needs-requester", "  if facts.request.requested_by == nil then return 'who asked?' end"),
    policy("zone", "  if facts.candidate and facts.primary and facts.candidate.labels.zone == facts.primary.labels.zone then return 'same zone' end"),
    policy("lag", "  local c = facts.candidate\n  if c and c.durable_lsn and c.durable_lsn % 3 == 0 then return {'lag'} end"),
    policy("wrong-type", "  return 42"),
    policy("spin", "  while true do end"),
]

@Suite struct MonotonicityTests {
    /// Seed: `AERODB_PROMOTION_SEED` replays a run; cases: `AERODB_PROMOTION_CASES` (default 200).
    @Test func whateverIsAllowedWithPoliciesIsAllowedWithout() {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["AERODB_PROMOTION_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        let cases = environment["AERODB_PROMOTION_CASES"].flatMap { Int($0) } ?? 200
        print("MonotonicityTests seed \(seed), \(cases) cases (replay: AERODB_PROMOTION_SEED=\(seed))")
        var generator = FactsGenerator(rng: SeededRandom(seed: seed))
        let native = PromotionEngine(policies: [])
        var allowedNatively = 0
        var allowedWithPolicies = 0
        for index in 0..<cases {
            let facts = generator.document()
            var chosen: [PolicySource] = []
            for candidate in policyPool where generator.chance(30) && candidate.name != "spin" || (candidate.name == "spin" && generator.chance(2)) {
                chosen.append(candidate)
            }
            let withPolicies = PromotionEngine(policies: chosen).decide(facts)
            let without = native.decide(facts)
            let context = "case \(index) seed \(seed) policies \(chosen.map(\.name)) facts \(facts.json.canonicalJSON)"
            if withPolicies.allowed {
                allowedWithPolicies += 1
                #expect(without.allowed, "\(context)")
            }
            if without.allowed { allowedNatively += 1 }
            // Policies never change what the native rules say, and only add reasons after them.
            #expect(withPolicies.rules == without.rules, "\(context)")
            #expect(Array(withPolicies.reasons.prefix(without.reasons.count)) == without.reasons, "\(context)")
            #expect(withPolicies.allowed == (without.allowed && !withPolicies.policies.contains { $0.outcome.refuses }), "\(context)")
        }
        print("MonotonicityTests: \(allowedNatively) allowed natively, \(allowedWithPolicies) with policies, of \(cases)")
        if cases >= 50 { #expect(allowedNatively > 0, "the generator must reach allowed decisions (seed \(seed))") }
    }
}
