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
    static let clusterName = "aerodb"

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
        let own = service.status()
        let ownNode = (try? JSONParser.parse(own.bodyText))?["node"] ?? .null
        var nodes: [JSONValue] = []
        for member in config.members {
            if member.id == config.id {
                nodes.append(ownNode)
            } else if let node = reported[member.id] ?? nil {
                nodes.append(node)
            } else {
                nodes.append(.object([
                    "id": .string(member.id.rawValue), "role": .string(member.id == primary ? "primary" : "replica"),
                    "reachable": .bool(false), "epoch": .null, "durable_lsn": .null, "applied_lsn": .null, "acked_lsn": .null,
                    "primary_acked_lsn": .null, "wal": .null, "recovering": .null, "following": .null, "last_contact_ms": .null,
                    "labels": .object(member.labels.mapValues { .string($0) }),
                ]))
            }
        }
        let nowMs = EventJournal.wallClockMs()
        var request: [String: JSONValue] = ["kind": .string(kind), "candidate": .string(config.id.rawValue)]
        request["requested_by"] = requestedBy.map { .string($0) } ?? .null
        let json = JSONValue.object([
            "schema": .string(FactsDocument.schemaVersion),
            "captured_at": .string(rfc3339(ms: nowMs)),
            "request": .object(request),
            "cluster": .object([
                "name": .string(clusterName), "epoch": .integer(Int64(authority.epoch.rawValue)), "primary": .string(primary.rawValue),
                "commit_mode": .string(config.commitMode.rawValue),
                "sync_replicas": .array(config.syncReplicas.map { .string($0.rawValue) }), "labels": .object([:]),
                "sync_quorum": config.syncQuorum.map { .integer(Int64($0)) } ?? .null,
                // The current epoch's, as its history entry records it (this node's view).
                "durability": (try? NodeRoles.durability(config: config, authority: authority)?.get())?.json ?? .null,
                "epoch_start_lsn": authority.history.last.map { .integer(Int64($0.startLSN.rawValue)) } ?? .null,
            ]),
            "nodes": .array(nodes),
        ])
        return Captured(document: try FactsDocument(json: json), capturedMs: nowMs)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. 2026-11-27T01:02:03.456Z.
    static func rfc3339(ms: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
