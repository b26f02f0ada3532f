// FactsFixtures.swift — generated facts documents of any size, for tests and benchmarks.
// Built through `FactsDocument(request:cluster:nodes:capturedAt:)`, so every generated
// document is validated exactly as a captured one would be.
import AeroCore

public enum FactsFixtures {
    /// Zones the generated nodes rotate through; the primary is in the first.
    public static let zones = ["eu-1a", "eu-1b", "eu-1c"]

    /// A failover of a cluster of `nodeCount` nodes (at least 2) that passes every native rule:
    /// the primary `n0000` is unreachable, the candidate `n0001` is the epoch's one acknowledging
    /// member (`sync_replicas` [n0000, n0001]; the new epoch's set is {n0000}), durable
    /// ahead of every peer and of every acknowledged position; the other replicas trail it by
    /// different amounts and are spread over `zones`. Deterministic: the same count gives the
    /// same document (and digest).
    public static func cluster(nodeCount: Int) -> FactsDocument {
        precondition(nodeCount >= 2 && nodeCount <= FactsDocument.nodeCountMax, "nodeCount out of range")
        let epoch = Epoch(7)
        let head: UInt64 = 1_000_000
        let primary = NodeID(nodeName(0))
        var nodes = [NodeFacts.unreachable(id: primary, role: .primary, labels: ["zone": zones[0]])]
        for index in 1..<nodeCount {
            // The candidate (index 1) is at the head; the others trail by 1...997 records.
            let behind = UInt64(index == 1 ? 0 : 1 + (index * 37) % 997)
            let durable = LSN(head - behind)
            nodes.append(NodeFacts(
                id: NodeID(nodeName(index)), role: .replica, reachable: true, epoch: epoch,
                durableLSN: durable, appliedLSN: durable, ackedLSN: nil,
                primaryAckedLSN: LSN(head - 2 - behind), wal: WALFacts(continuous: true, corrupt: false),
                recovering: false, following: primary, lastContactMs: 4_000 + UInt64(index % 500),
                labels: ["zone": zones[index % zones.count], "rack": "r\(index % 16)"],
                // One policy set and engine everywhere (POLICY-1 passes).
                policySetDigest: fixturePolicySetDigest, engineVersion: AeroVersion.string))
        }
        let cluster = ClusterFacts(
            name: "generated-\(nodeCount)", epoch: epoch, primary: primary, commitMode: .sync,
            syncReplicas: [primary, NodeID(nodeName(1))], labels: ["tier": "production"])
        let request = FactsRequest(kind: .failover, candidate: NodeID(nodeName(1)), requestedBy: "ops-oncall")
        do {
            return try FactsDocument(request: request, cluster: cluster, nodes: nodes, capturedAt: "2026-11-26T10:00:00Z")
        } catch {
            preconditionFailure("generated facts are invalid: \(error)")
        }
    }

    /// The policy set digest every generated node reports: that of no policies.
    public static let fixturePolicySetDigest = PromotionEngine.policySetDigest([])

    /// `n0000`, `n0001`, …: names that sort in node order.
    public static func nodeName(_ index: Int) -> String {
        let digits = String(index)
        return "n" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
