// PromotionFacts.swift — the candidate captures one facts document for a promotion request.
//
// Every configured member is asked for `GET /v1/status` at once, each bounded by
// `timeouts.facts_gather_timeout_ms`; this node's own facts are read in process. A member that
// does not answer in time, or answers something that is not a status, is `reachable: false`
// with null for everything it would have reported: nothing is guessed. The cluster's epoch and
// primary are this candidate's view (its authority file); a member reporting a higher epoch or
// claiming to be primary trips EPOCH-1 in the engine. `captured_at` is the only clock reading
// and the engine never reads it.

import AeroCore
import AeroStorage
import Foundation

enum PromotionFacts {
    struct Captured: Sendable {
        var document: FactsDocument
        var capturedMs: UInt64
    }

    static func capture(kind: String, requestedBy: String?, service: KVService) async throws(FactsError) -> Captured {
        let config = service.config
        let authority = service.engine.authority
        let primary = authority.role == .primary ? config.id : (authority.following ?? authority.history.last?.primary ?? config.id)
        let timeoutMs = config.timeouts.factsGatherTimeoutMs
        let others = config.members.filter { $0.id != config.id }
        var reported: [NodeID: JSONValue] = [:]
        await withTaskGroup(of: (NodeID, JSONValue?).self) { group in
            for member in others {
                group.addTask {
                    guard let reply = try? await PeerHTTP.send("GET", member.http, "/v1/status", timeoutMs: timeoutMs),
                          reply.status == 200, let node = reply.json?["node"], node["id"]?.stringValue == member.id.rawValue else {
                        return (member.id, nil)
                    }
                    return (member.id, node)
                }
            }
            for await (id, node) in group { reported[id] = node }
        }
        // Every node in the one shape NodeStatus measures: this node in process, the others as
        // they answered (read by the facts reader, so a status this build cannot read is
        // PROMOTE-FACTS-1 naming the field), the unreached with configuration only.
        var nodes: [NodeFacts] = []
        for (index, member) in config.members.enumerated() {
            if member.id == config.id {
                nodes.append(service.nodeFacts())
            } else if let node = reported[member.id] ?? nil {
                nodes.append(try NodeFacts(json: node, path: "$.nodes[\(index)]"))
            } else {
                nodes.append(.unreachable(id: member.id, role: member.id == primary ? .primary : .replica, labels: member.labels))
            }
        }
        let nowMs = EventJournal.wallClockMs()
        let cluster = ClusterFacts(
            name: config.clusterName, epoch: authority.epoch, primary: primary, commitMode: config.commitMode,
            // The candidate's applied view of the replicated labels (ClusterLabels.swift).
            syncReplicas: config.syncReplicas, labels: ClusterLabels.read(service.engine.snapshot()), syncQuorum: config.syncQuorum,
            // The current epoch's, as its history entry records it (this node's view).
            durability: try? NodeRoles.durability(config: config, authority: authority)?.get(),
            epochStartLSN: authority.history.last?.startLSN,
            // The recent epochs with how each began, as this candidate applied them.
            history: EpochRecords.history(authority: authority, snapshot: service.engine.snapshot()))
        let request = FactsRequest(kind: kind, candidate: config.id, requestedBy: requestedBy)
        let document = try FactsDocument(request: request, cluster: cluster, nodes: nodes, capturedAt: rfc3339(ms: nowMs))
        return Captured(document: document, capturedMs: nowMs)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. 2026-11-27T01:02:03.456Z.
    static func rfc3339(ms: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
