// Facts.swift — the facts document: a frozen snapshot of cluster state that a promotion
// decision reads, and nothing else.
//
// Schema "aerodb.facts/2", and "aerodb.facts/1" for documents written before it (journaled
// decisions keep replaying); FactsHistory.swift says what /2 adds. docs/promotion-rules.md
// has the field reference:
//   - Every field of the node shape must be present; a value that was not reported is an
//     explicit null. A typo in a key therefore fails loudly instead of reading as "unknown".
//   - A node with `reachable: false` has null for everything it would have reported (epoch,
//     LSNs, wal, recovering, following, last_contact_ms): nothing is guessed. A reachable node
//     has non-null epoch, durable_lsn, applied_lsn, wal and recovering.
//   - `request.kind` is any string here; whether it is a known kind is the rule REQ-1's
//     question, as is whether `request.candidate` is named and present. Everything else that
//     is missing, mistyped or inconsistent (duplicate node ids, `cluster.primary` or a sync
//     replica not among the nodes) makes the document unusable: it is rejected with the JSON
//     path of the field, never half-evaluated.
//   - Unknown extra fields are allowed and kept in `json`, which policies read.
// Invariant P10 (docs/invariants.md): an unusable document is rejected by
// `FactsDocument.init(json:)`, naming the field by JSON path, before any rule runs.

/// The kinds of promotion a request may ask for.
public enum PromotionKind: String, Sendable, CaseIterable, Equatable {
    /// The primary is gone; a replica takes over.
    case failover
    /// Planned: the primary is reachable and is fenced before the candidate takes over.
    case switchover
}

/// When the primary acknowledges a write to a client.
public enum CommitMode: String, Sendable, CaseIterable, Equatable {
    /// Only after every node in `sync_replicas` stored it durably.
    case sync
    /// As soon as the primary stored it durably; replicas may lag.
    case async
}

/// A node's role: configured (facts) or held (the storage engine's authority file).
public enum NodeRole: String, Sendable, CaseIterable, Codable, Hashable {
    case primary, replica
}

/// What was asked for.
public struct FactsRequest: Sendable, Equatable {
    /// The raw kind as written; `promotionKind` is nil when it is not a known kind.
    public var kind: String
    public var candidate: NodeID?
    public var requestedBy: String?

    public init(kind: String, candidate: NodeID?, requestedBy: String?) {
        self.kind = kind
        self.candidate = candidate
        self.requestedBy = requestedBy
    }

    public init(kind: PromotionKind, candidate: NodeID?, requestedBy: String?) {
        self.init(kind: kind.rawValue, candidate: candidate, requestedBy: requestedBy)
    }

    public var promotionKind: PromotionKind? { PromotionKind(rawValue: kind) }
}

/// The cluster's configuration and authority term, as known when the facts were captured.
public struct ClusterFacts: Sendable, Equatable {
    public var name: String
    public var epoch: Epoch
    public var primary: NodeID
    public var commitMode: CommitMode
    /// The members configured to acknowledge writes (the eligible set of EpochDurability).
    public var syncReplicas: [NodeID]
    public var labels: [String: String]
    /// `sync_quorum` as configured; nil means "all of the epoch's set".
    public var syncQuorum: Int?
    /// What "acknowledged" means in the current epoch, as its history entry records it; nil
    /// in async mode. A document without the field (aerodb.facts/1 as first written) gets the
    /// value D1 derives from `sync_replicas` and `sync_quorum` for the current primary.
    public var durability: EpochDurability?
    /// The first LSN of the current epoch (its history entry), when known.
    public var epochStartLSN: LSN?
    /// aerodb.facts/2: the recent epochs, oldest first (empty for a /1 document).
    public var history: [EpochFacts]

    public init(
        name: String, epoch: Epoch, primary: NodeID, commitMode: CommitMode,
        syncReplicas: [NodeID], labels: [String: String] = [:], syncQuorum: Int? = nil,
        durability: EpochDurability? = nil, epochStartLSN: LSN? = nil, history: [EpochFacts] = []
    ) {
        self.name = name
        self.epoch = epoch
        self.primary = primary
        self.commitMode = commitMode
        self.syncReplicas = syncReplicas
        self.labels = labels
        self.syncQuorum = syncQuorum
        self.durability = durability
        self.epochStartLSN = epochStartLSN
        self.history = history
    }

    /// The durability a primary `candidate` of the next epoch would have (D1), or why none.
    public func nextDurability(primary candidate: NodeID) -> Result<EpochDurability, DurabilityProblem>? {
        guard commitMode == .sync else { return nil }
        return EpochDurability.derive(eligible: syncReplicas, quorum: syncQuorum, primary: candidate)
    }
}

/// The state of a node's write-ahead log as the node reported it.
public struct WALFacts: Sendable, Equatable {
    /// No gap between the node's records.
    public var continuous: Bool
    /// A checksum failed somewhere in the log.
    public var corrupt: Bool

    public init(continuous: Bool, corrupt: Bool) {
        self.continuous = continuous
        self.corrupt = corrupt
    }
}

/// One node as seen when the facts were captured. Reported fields are nil when the node was
/// not reached (and nil where they do not apply, e.g. `ackedLSN` of a replica).
public struct NodeFacts: Sendable, Equatable {
    public var id: NodeID
    /// From configuration; present even when the node was not reached.
    public var role: NodeRole
    public var reachable: Bool
    public var epoch: Epoch?
    /// Last WAL position fsynced on the node.
    public var durableLSN: LSN?
    /// Last position visible to reads.
    public var appliedLSN: LSN?
    /// Primary only: highest position acknowledged to any client as committed.
    public var ackedLSN: LSN?
    /// Replicas: the primary's `ackedLSN` as last heard by this replica.
    public var primaryAckedLSN: LSN?
    public var wal: WALFacts?
    public var recovering: Bool?
    /// Replicas: the node it replicates from.
    public var following: NodeID?
    /// Replicas: time since it last heard from its primary.
    public var lastContactMs: UInt64?
    /// From configuration (e.g. "zone").
    public var labels: [String: String]
    /// aerodb.facts/2: the digest of the policy set the node loads and its engine version
    /// (nil when unreachable, when its policy_dir is unusable, or in a /1 document).
    public var policySetDigest: String?
    public var engineVersion: String?

    public init(
        id: NodeID, role: NodeRole, reachable: Bool, epoch: Epoch? = nil, durableLSN: LSN? = nil,
        appliedLSN: LSN? = nil, ackedLSN: LSN? = nil, primaryAckedLSN: LSN? = nil,
        wal: WALFacts? = nil, recovering: Bool? = nil, following: NodeID? = nil,
        lastContactMs: UInt64? = nil, labels: [String: String] = [:], policySetDigest: String? = nil, engineVersion: String? = nil
    ) {
        self.id = id
        self.role = role
        self.reachable = reachable
        self.epoch = epoch
        self.durableLSN = durableLSN
        self.appliedLSN = appliedLSN
        self.ackedLSN = ackedLSN
        self.primaryAckedLSN = primaryAckedLSN
        self.wal = wal
        self.recovering = recovering
        self.following = following
        self.lastContactMs = lastContactMs
        self.labels = labels
        self.policySetDigest = policySetDigest
        self.engineVersion = engineVersion
    }

    /// A node that was not reached: only configuration is known.
    public static func unreachable(id: NodeID, role: NodeRole, labels: [String: String] = [:]) -> NodeFacts {
        NodeFacts(id: id, role: role, reachable: false, labels: labels)
    }
}

/// A facts document that is not usable, naming the field by JSON path.
public struct FactsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// JSON path of the offending field, e.g. `$.nodes[1].epoch`; `$` for the whole document.
    public let path: String
    public let message: String
    /// Set when the text was not JSON at all.
    public let syntax: JSONSyntaxError?

    public init(path: String, message: String) {
        self.path = path
        self.message = message
        self.syntax = nil
    }

    public init(syntax: JSONSyntaxError) {
        self.path = "$"
        self.message = "not JSON: \(syntax)"
        self.syntax = syntax
    }

    public var description: String { "\(path): \(message)" }
}

/// A validated facts document. Immutable: a decision reads one frozen snapshot.
public struct FactsDocument: Sendable, Equatable {
    /// The schema this build writes.
    public static let schemaVersion = "aerodb.facts/2"
    /// The first schema: still read, so that journaled decisions keep replaying.
    public static let schemaVersion1 = "aerodb.facts/1"
    /// Every schema this build reads.
    public static let schemasRead = [schemaVersion1, schemaVersion]
    /// Nodes per document. A cluster is small; the bound keeps hostile documents cheap.
    public static let nodeCountMax = 10_000

    public let schema: String
    /// RFC 3339 time of capture, as written (the engine never reads a clock).
    public let capturedAt: String
    public let request: FactsRequest
    public let cluster: ClusterFacts
    /// In document order.
    public let nodes: [NodeFacts]
    /// The document as given, extra fields included: what policies read.
    public let json: JSONValue
    /// SHA-256 of `json.canonicalJSON`, lower-case hex.
    public let digest: String

    let indexByID: [NodeID: Int]

    /// Validates a parsed document. Throws naming the first unusable field.
    public init(json: JSONValue) throws(FactsError) {
        let root = Field(value: json, path: "$")
        let schema = try root.member("schema").string()
        guard Self.schemasRead.contains(schema) else {
            throw FactsError(path: "$.schema", message: "unknown schema \"\(schema)\"; this build reads \(Self.schemasRead.map { "\"\($0)\"" }.joined(separator: " and "))")
        }
        let capturedAtField = try root.member("captured_at")
        let capturedAt = try capturedAtField.string()
        guard RFC3339.isValid(capturedAt) else {
            throw capturedAtField.error("expected an RFC 3339 time such as 2026-11-26T10:00:00Z, found \"\(capturedAt)\"")
        }

        let requestField = try root.member("request")
        _ = try requestField.object()
        let kind = try requestField.member("kind").string()
        let candidate = try requestField.optionalMember("candidate")?.nullableString()
        let requestedBy = try requestField.optionalMember("requested_by")?.nullableString()
        let request = FactsRequest(kind: kind, candidate: candidate.map { NodeID($0) }, requestedBy: requestedBy)

        let clusterField = try root.member("cluster")
        _ = try clusterField.object()
        let commitModeField = try clusterField.member("commit_mode")
        let commitModeText = try commitModeField.string()
        guard let commitMode = CommitMode(rawValue: commitModeText) else {
            throw commitModeField.error("expected \"sync\" or \"async\", found \"\(commitModeText)\"")
        }
        let syncField = try clusterField.member("sync_replicas")
        var syncReplicas: [NodeID] = []
        for (index, element) in try syncField.array().enumerated() {
            syncReplicas.append(NodeID(try Field(value: element, path: "\(syncField.path)[\(index)]").nodeID()))
        }
        let clusterName = try clusterField.member("name").nonEmptyString()
        let clusterEpoch = try clusterField.member("epoch").unsigned()
        let primaryID = try clusterField.member("primary").nodeID()
        let clusterLabels = try clusterField.optionalMember("labels")?.labels() ?? [:]
        var syncQuorum: Int?
        if let quorumField = try clusterField.optionalMember("sync_quorum"), quorumField.value != .null {
            let k = try quorumField.unsigned()
            guard k >= 1, k <= UInt64(max(syncReplicas.count, 1)) else {
                throw quorumField.error("expected 1...\(syncReplicas.count) (the size of sync_replicas) or null, found \(k)")
            }
            syncQuorum = Int(k)
        }
        var durability: EpochDurability?
        if let durabilityField = try clusterField.optionalMember("durability"), durabilityField.value != .null {
            guard commitMode == .sync else { throw durabilityField.error("only a sync-mode epoch has a durability; expected null") }
            guard let parsed = EpochDurability(json: durabilityField.value) else {
                throw durabilityField.error("expected {\"quorum\": k, \"set\": [member ids]} with 1 <= k <= the set's size and no id twice")
            }
            durability = parsed
        } else if commitMode == .sync, clusterField.value["durability"] == nil {
            // aerodb.facts/1 as first written: the durability D1 gives the current primary.
            durability = try? EpochDurability.derive(eligible: syncReplicas, quorum: syncQuorum, primary: NodeID(primaryID)).get()
        }
        let epochStartLSN = try clusterField.optionalMember("epoch_start_lsn")?.nullableUnsigned().map { LSN($0) }
        let history = try Self.readHistory(clusterField, schema: schema)
        let cluster = ClusterFacts(
            name: clusterName, epoch: Epoch(clusterEpoch), primary: NodeID(primaryID),
            commitMode: commitMode, syncReplicas: syncReplicas, labels: clusterLabels,
            syncQuorum: syncQuorum, durability: durability, epochStartLSN: epochStartLSN, history: history
        )

        let nodesField = try root.member("nodes")
        let nodeValues = try nodesField.array()
        guard !nodeValues.isEmpty else { throw nodesField.error("a cluster has at least one node") }
        guard nodeValues.count <= Self.nodeCountMax else {
            throw nodesField.error("\(nodeValues.count) nodes; at most \(Self.nodeCountMax) are read")
        }
        var nodes: [NodeFacts] = []
        nodes.reserveCapacity(nodeValues.count)
        var indexByID: [NodeID: Int] = [:]
        for (index, value) in nodeValues.enumerated() {
            let field = Field(value: value, path: "$.nodes[\(index)]")
            let node = try Self.readNode(field, schema: schema)
            if let earlier = indexByID.updateValue(index, forKey: node.id) {
                throw FactsError(path: "\(field.path).id", message: "duplicate node id \"\(node.id)\" (also $.nodes[\(earlier)])")
            }
            nodes.append(node)
        }
        guard indexByID[cluster.primary] != nil else {
            throw FactsError(path: "$.cluster.primary", message: "\"\(cluster.primary)\" is not among the nodes")
        }
        var seenSync: Set<NodeID> = []
        for (index, id) in syncReplicas.enumerated() {
            let path = "$.cluster.sync_replicas[\(index)]"
            guard indexByID[id] != nil else {
                throw FactsError(path: path, message: "\"\(id)\" is not among the nodes")
            }
            guard seenSync.insert(id).inserted else {
                throw FactsError(path: path, message: "\"\(id)\" is listed twice")
            }
        }

        if let durability {
            for (index, id) in durability.set.enumerated() {
                guard indexByID[id] != nil else {
                    throw FactsError(path: "$.cluster.durability.set[\(index)]", message: "\"\(id)\" is not among the nodes")
                }
                guard id != cluster.primary else {
                    throw FactsError(path: "$.cluster.durability.set[\(index)]", message: "the primary \"\(id)\" never acknowledges for itself (Q2)")
                }
            }
        }

        self.schema = schema
        self.capturedAt = capturedAt
        self.request = request
        self.cluster = cluster
        self.nodes = nodes
        self.json = json
        self.digest = Digest.sha256Hex(json.canonicalJSON.utf8)
        self.indexByID = indexByID
    }

    /// Parses and validates facts text. Syntax errors come back as a `FactsError` at `$`.
    public static func parse(_ text: String) throws(FactsError) -> FactsDocument {
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch {
            throw FactsError(syntax: error)
        }
        return try FactsDocument(json: json)
    }

    /// Builds the document the live server captures from node status: the same JSON shape a
    /// file would have, validated by the same code (so it throws on the same mistakes).
    public init(
        request: FactsRequest, cluster: ClusterFacts, nodes: [NodeFacts], capturedAt: String
    ) throws(FactsError) {
        try self.init(json: FactsJSON.document(
            request: request, cluster: cluster, nodes: nodes, capturedAt: capturedAt))
    }

    /// The position of node `id` in `nodes`, or nil when there is no such node.
    public func index(of id: NodeID) -> Int? { indexByID[id] }

    /// The node called `id`, or nil when there is no such node.
    public func node(_ id: NodeID) -> NodeFacts? { indexByID[id].map { nodes[$0] } }

    /// The request's candidate when it is named and present in `nodes`.
    public var candidate: NodeFacts? { request.candidate.flatMap(node) }

    /// The current primary per `cluster.primary` (always present: validated).
    public var primary: NodeFacts { nodes[indexByID[cluster.primary]!] }

    public static func == (lhs: FactsDocument, rhs: FactsDocument) -> Bool { lhs.json == rhs.json }

    static func readNode(_ field: Field, schema: String) throws(FactsError) -> NodeFacts {
        _ = try field.object()
        let roleField = try field.member("role")
        let roleText = try roleField.string()
        guard let role = NodeRole(rawValue: roleText) else {
            throw roleField.error("expected \"primary\" or \"replica\", found \"\(roleText)\"")
        }
        let id = NodeID(try field.member("id").nodeID())
        let reachable = try field.member("reachable").bool()
        let epoch = try field.member("epoch").nullableUnsigned()
        let durable = try field.member("durable_lsn").nullableUnsigned()
        let applied = try field.member("applied_lsn").nullableUnsigned()
        let acked = try field.member("acked_lsn").nullableUnsigned()
        let primaryAcked = try field.member("primary_acked_lsn").nullableUnsigned()
        let recovering = try field.member("recovering").nullableBool()
        let following = try field.member("following").nullableString()
        let lastContactMs = try field.member("last_contact_ms").nullableUnsigned()
        let labels = try field.optionalMember("labels")?.labels() ?? [:]
        // aerodb.facts/2 requires them (null allowed); a /1 document may carry them.
        let v2 = schema != Self.schemaVersion1
        let policySetDigest = try (v2 ? field.member("policy_set_digest") : field.optionalMember("policy_set_digest"))?.nullableString()
        let engineVersion = try (v2 ? field.member("engine_version") : field.optionalMember("engine_version"))?.nullableString()
        var node = NodeFacts(
            id: id, role: role, reachable: reachable,
            epoch: epoch.map { Epoch($0) },
            durableLSN: durable.map { LSN($0) },
            appliedLSN: applied.map { LSN($0) },
            ackedLSN: acked.map { LSN($0) },
            primaryAckedLSN: primaryAcked.map { LSN($0) },
            wal: nil,
            recovering: recovering,
            following: following.map { NodeID($0) },
            lastContactMs: lastContactMs,
            labels: labels,
            policySetDigest: policySetDigest,
            engineVersion: engineVersion
        )
        let walField = try field.member("wal")
        if walField.value != .null {
            _ = try walField.object()
            node.wal = WALFacts(
                continuous: try walField.member("continuous").bool(),
                corrupt: try walField.member("corrupt").bool()
            )
        }
        let reported: [(key: String, isNull: Bool)] = [
            ("epoch", node.epoch == nil), ("durable_lsn", node.durableLSN == nil),
            ("applied_lsn", node.appliedLSN == nil), ("acked_lsn", node.ackedLSN == nil),
            ("primary_acked_lsn", node.primaryAckedLSN == nil), ("wal", node.wal == nil),
            ("recovering", node.recovering == nil), ("following", node.following == nil),
            ("last_contact_ms", node.lastContactMs == nil),
            ("policy_set_digest", node.policySetDigest == nil), ("engine_version", node.engineVersion == nil),
        ]
        if reachable {
            for (key, isNull) in reported where isNull && Self.requiredWhenReachable.contains(key) {
                throw FactsError(path: "\(field.path).\(key)", message: "a reachable node must report \(key) (found null)")
            }
        } else {
            for (key, isNull) in reported where !isNull {
                throw FactsError(path: "\(field.path).\(key)", message: "an unreachable node reported nothing, so \(key) must be null")
            }
        }
        return node
    }

    static let requiredWhenReachable: Set<String> = ["epoch", "durable_lsn", "applied_lsn", "wal", "recovering"]
}

/// A value being validated, with its JSON path for errors.
struct Field {
    let value: JSONValue
    let path: String

    func error(_ message: String) -> FactsError { FactsError(path: path, message: message) }

    func object() throws(FactsError) -> [String: JSONValue] {
        guard case .object(let members) = value else { throw error("expected an object, found \(value.typeName)") }
        return members
    }

    func member(_ key: String) throws(FactsError) -> Field {
        let members = try object()
        guard let member = members[key] else { throw FactsError(path: "\(path).\(key)", message: "missing required field") }
        return Field(value: member, path: "\(path).\(key)")
    }

    func optionalMember(_ key: String) throws(FactsError) -> Field? {
        let members = try object()
        return members[key].map { Field(value: $0, path: "\(path).\(key)") }
    }

    func array() throws(FactsError) -> [JSONValue] {
        guard case .array(let elements) = value else { throw error("expected an array, found \(value.typeName)") }
        return elements
    }

    func string() throws(FactsError) -> String {
        guard case .string(let text) = value else { throw error("expected a string, found \(value.typeName)") }
        return text
    }

    func nonEmptyString() throws(FactsError) -> String {
        let text = try string()
        guard !text.isEmpty else { throw error("must not be empty") }
        return text
    }

    func nodeID() throws(FactsError) -> String {
        let text = try string()
        guard !text.isEmpty else { throw error("a node id must not be empty") }
        return text
    }

    func nullableString() throws(FactsError) -> String? {
        if value == .null { return nil }
        guard case .string(let text) = value else { throw error("expected a string or null, found \(value.typeName)") }
        return text
    }

    func bool() throws(FactsError) -> Bool {
        guard case .bool(let flag) = value else { throw error("expected a boolean, found \(value.typeName)") }
        return flag
    }

    func nullableBool() throws(FactsError) -> Bool? {
        if value == .null { return nil }
        guard case .bool(let flag) = value else { throw error("expected a boolean or null, found \(value.typeName)") }
        return flag
    }

    func unsigned() throws(FactsError) -> UInt64 {
        guard case .integer(let number) = value else { throw error("expected a non-negative integer, found \(value.typeName)") }
        guard number >= 0 else { throw error("expected a non-negative integer, found \(number)") }
        return UInt64(number)
    }

    func nullableUnsigned() throws(FactsError) -> UInt64? {
        if value == .null { return nil }
        guard case .integer = value else { throw error("expected a non-negative integer or null, found \(value.typeName)") }
        return try unsigned()
    }

    func labels() throws(FactsError) -> [String: String] {
        var labels: [String: String] = [:]
        for (key, member) in try object() {
            labels[key] = try Field(value: member, path: "\(path).\(key)").string()
        }
        return labels
    }
}

/// RFC 3339 date-time syntax (`2026-11-26T10:00:00Z`, optional fraction, `Z` or `±HH:MM`).
enum RFC3339 {
    static func isValid(_ text: String) -> Bool {
        let b = Array(text.utf8)
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var value = 0
            for byte in b[start..<start + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        func byte(_ at: Int, _ expected: String) -> Bool {
            at < b.count && expected.utf8.contains(b[at])
        }
        guard digits(0, 4) != nil, byte(4, "-"), let month = digits(5, 2), byte(7, "-"),
              let day = digits(8, 2), byte(10, "Tt "), let hour = digits(11, 2), byte(13, ":"),
              let minute = digits(14, 2), byte(16, ":"), let second = digits(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return false }
        var at = 19
        if byte(at, ".") {
            at += 1
            let fractionStart = at
            while at < b.count, b[at] >= 48 && b[at] <= 57 { at += 1 }
            if at == fractionStart { return false }
        }
        if byte(at, "Zz") { return at + 1 == b.count }
        guard byte(at, "+-"), let offsetHour = digits(at + 1, 2), byte(at + 3, ":"),
              let offsetMinute = digits(at + 4, 2), offsetHour < 24, offsetMinute < 60
        else { return false }
        return at + 6 == b.count
    }
}
