// FactsJSON.swift — typed facts back to the JSON shape of schema "aerodb.facts/2".
// `FactsDocument(request:cluster:nodes:capturedAt:)` builds through here and then validates
// the result with the same code that reads files, so both paths accept exactly the same
// documents.

enum FactsJSON {
    static func document(
        request: FactsRequest, cluster: ClusterFacts, nodes: [NodeFacts], capturedAt: String
    ) -> JSONValue {
        var clusterJSON: [String: JSONValue] = [
            "name": .string(cluster.name),
            "epoch": unsigned(cluster.epoch.rawValue),
            "primary": .string(cluster.primary.rawValue),
            "commit_mode": .string(cluster.commitMode.rawValue),
            "sync_replicas": .array(cluster.syncReplicas.map { .string($0.rawValue) }),
            "sync_quorum": cluster.syncQuorum.map { .integer(Int64($0)) } ?? .null,
            "epoch_start_lsn": optionalUnsigned(cluster.epochStartLSN?.rawValue),
            "labels": labels(cluster.labels),
            "history": .array(cluster.history.map(\.json)),
        ]
        // Left out when unknown, so that the reader derives it (D1) exactly as for a file.
        if let durability = cluster.durability { clusterJSON["durability"] = durability.json }
        return .object([
            "schema": .string(FactsDocument.schemaVersion),
            "captured_at": .string(capturedAt),
            "request": .object([
                "kind": .string(request.kind),
                "candidate": request.candidate.map { .string($0.rawValue) } ?? .null,
                "requested_by": request.requestedBy.map(JSONValue.string) ?? .null,
            ]),
            "cluster": .object(clusterJSON),
            "nodes": .array(nodes.map(node)),
        ])
    }

    static func node(_ node: NodeFacts) -> JSONValue {
        .object([
            "id": .string(node.id.rawValue),
            "role": .string(node.role.rawValue),
            "reachable": .bool(node.reachable),
            "epoch": optionalUnsigned(node.epoch?.rawValue),
            "durable_lsn": optionalUnsigned(node.durableLSN?.rawValue),
            "applied_lsn": optionalUnsigned(node.appliedLSN?.rawValue),
            "acked_lsn": optionalUnsigned(node.ackedLSN?.rawValue),
            "primary_acked_lsn": optionalUnsigned(node.primaryAckedLSN?.rawValue),
            "wal": node.wal.map { .object(["continuous": .bool($0.continuous), "corrupt": .bool($0.corrupt)]) } ?? .null,
            "recovering": node.recovering.map(JSONValue.bool) ?? .null,
            "following": node.following.map { .string($0.rawValue) } ?? .null,
            "last_contact_ms": optionalUnsigned(node.lastContactMs),
            "labels": labels(node.labels),
            "policy_set_digest": node.policySetDigest.map(JSONValue.string) ?? .null,
            "engine_version": node.engineVersion.map(JSONValue.string) ?? .null,
        ])
    }

    static func labels(_ labels: [String: String]) -> JSONValue {
        .object(labels.mapValues(JSONValue.string))
    }

    /// JSON integers are Int64. Positions and epochs beyond Int64.max cannot occur in a
    /// running cluster (2^63 records), so reaching one here is a programmer error.
    static func unsigned(_ value: UInt64) -> JSONValue {
        precondition(value <= UInt64(Int64.max), "value \(value) does not fit a JSON integer")
        return .integer(Int64(value))
    }

    static func optionalUnsigned(_ value: UInt64?) -> JSONValue {
        value.map(unsigned) ?? .null
    }
}

extension NodeFacts {
    /// This node in the JSON shape of the facts document.
    public var json: JSONValue { FactsJSON.node(self) }

    /// Reads one node in that shape (a member's `GET /v1/status` "node"), validated as the
    /// document reader validates it; errors name `path` and the field.
    public init(json: JSONValue, path: String) throws(FactsError) {
        self = try FactsDocument.readNode(Field(value: json, path: path), schema: FactsDocument.schemaVersion)
    }
}
