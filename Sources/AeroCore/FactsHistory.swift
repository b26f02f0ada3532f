// FactsHistory.swift — what schema "aerodb.facts/2" adds to "aerodb.facts/1":
//   - `cluster.history`: the recent epochs, oldest first, at most `historyEntriesMax`, each
//     `{epoch, primary, start_lsn, kind, decision_id, started_at}`; kind is "initial" for the
//     cluster's first epoch, "failover" or "switchover" for one a promotion began, null when not
//     recorded; started_at an RFC 3339 time or null. Epochs strictly increase. Required in /2.
//   - `nodes[i].policy_set_digest`, `nodes[i].engine_version`: strings or null, present in
//     every node (null when unreachable, or when the node's policy_dir is unusable).
// A /1 document has neither; it reads as before, with an empty history (policies see none).

/// One epoch of the cluster's history as the facts carry it.
public struct EpochFacts: Sendable, Equatable {
    public var epoch: Epoch
    public var primary: NodeID
    public var startLSN: LSN
    /// "initial", "failover" or "switchover"; nil when not recorded.
    public var kind: String?
    /// The decision that began the epoch (a promotion), when recorded.
    public var decisionID: String?
    /// When the epoch began (RFC 3339, the promoting node's wall clock), when recorded.
    public var startedAt: String?

    public init(epoch: Epoch, primary: NodeID, startLSN: LSN, kind: String?, decisionID: String?, startedAt: String?) {
        self.epoch = epoch
        self.primary = primary
        self.startLSN = startLSN
        self.kind = kind
        self.decisionID = decisionID
        self.startedAt = startedAt
    }

    public var json: JSONValue {
        .object([
            "epoch": FactsJSON.unsigned(epoch.rawValue), "primary": .string(primary.rawValue),
            "start_lsn": FactsJSON.unsigned(startLSN.rawValue),
            "kind": kind.map(JSONValue.string) ?? .null, "decision_id": decisionID.map(JSONValue.string) ?? .null,
            "started_at": startedAt.map(JSONValue.string) ?? .null,
        ])
    }
}

extension FactsDocument {
    /// Epochs the facts carry at most (the newest); enough for any anti-flap window.
    public static let historyEntriesMax = 64

    static func readHistory(_ cluster: Field, schema: String) throws(FactsError) -> [EpochFacts] {
        guard let field = try cluster.optionalMember("history") else {
            if schema == schemaVersion1 { return [] }
            throw FactsError(path: "\(cluster.path).history", message: "missing required field (aerodb.facts/2)")
        }
        let values = try field.array()
        guard values.count <= historyEntriesMax else {
            throw field.error("\(values.count) entries; at most \(historyEntriesMax) are read")
        }
        var history: [EpochFacts] = []
        for (index, value) in values.enumerated() {
            let entry = Field(value: value, path: "\(field.path)[\(index)]")
            _ = try entry.object()
            let epoch = Epoch(try entry.member("epoch").unsigned())
            if let previous = history.last, previous.epoch >= epoch {
                throw FactsError(path: "\(entry.path).epoch", message: "epoch \(epoch) does not follow epoch \(previous.epoch): entries are oldest first, epochs increasing")
            }
            let startedAtField = try entry.member("started_at")
            let startedAt = try startedAtField.nullableString()
            if let startedAt, !RFC3339.isValid(startedAt) {
                throw startedAtField.error("expected an RFC 3339 time or null, found \"\(startedAt)\"")
            }
            history.append(EpochFacts(
                epoch: epoch, primary: NodeID(try entry.member("primary").nodeID()),
                startLSN: LSN(try entry.member("start_lsn").unsigned()),
                kind: try entry.member("kind").nullableString(), decisionID: try entry.member("decision_id").nullableString(),
                startedAt: startedAt))
        }
        return history
    }
}
