import Testing
@testable import AeroCore
import AeroTestSupport

/// The document from the issue, verbatim.
let issueExample = """
    { "schema": "aerodb.facts/1",
      "captured_at": "2026-11-26T10:00:00Z",
      "request": { "kind": "failover", "candidate": "b", "requested_by": "ops-oncall" },
      "cluster": { "name": "eu-prod", "epoch": 7, "primary": "a",
                   "commit_mode": "sync", "sync_replicas": ["b"] },
      "nodes": [
        { "id": "a", "role": "primary", "reachable": false, "epoch": null, "durable_lsn": null,
          "applied_lsn": null, "acked_lsn": null, "primary_acked_lsn": null, "wal": null,
          "recovering": null, "following": null, "last_contact_ms": null, "labels": { "zone": "eu-1a" } },
        { "id": "b", "role": "replica", "reachable": true, "epoch": 7, "durable_lsn": 1200,
          "applied_lsn": 1200, "acked_lsn": null, "primary_acked_lsn": 1198,
          "wal": { "continuous": true, "corrupt": false }, "recovering": false,
          "following": "a", "last_contact_ms": 4100, "labels": { "zone": "eu-1b" } } ] }
    """

@Suite struct FactsDocumentTests {
    let example: JSONValue

    init() throws { example = try JSONParser.parse(issueExample) }

    func error(_ json: JSONValue) -> FactsError? {
        do {
            _ = try FactsDocument(json: json)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsTheIssueExample() throws {
        let facts = try FactsDocument.parse(issueExample)
        #expect(facts.schema == "aerodb.facts/1")
        #expect(facts.capturedAt == "2026-11-26T10:00:00Z")
        #expect(facts.request == FactsRequest(kind: .failover, candidate: "b", requestedBy: "ops-oncall"))
        #expect(facts.request.promotionKind == .failover)
        // aerodb.facts/1 as first written has no durability: D1 derives ANY 1 (b) for primary a.
        #expect(facts.cluster == ClusterFacts(name: "eu-prod", epoch: Epoch(7), primary: "a", commitMode: .sync, syncReplicas: ["b"],
                                              durability: EpochDurability(quorum: 1, set: ["b"])))
        #expect(facts.nodes.count == 2)
        #expect(facts.nodes[0] == .unreachable(id: "a", role: .primary, labels: ["zone": "eu-1a"]))
        #expect(facts.nodes[1] == NodeFacts(
            id: "b", role: .replica, reachable: true, epoch: Epoch(7), durableLSN: LSN(1200), appliedLSN: LSN(1200),
            ackedLSN: nil, primaryAckedLSN: LSN(1198), wal: WALFacts(continuous: true, corrupt: false),
            recovering: false, following: "a", lastContactMs: 4100, labels: ["zone": "eu-1b"]))
        #expect(facts.candidate?.id == "b")
        #expect(facts.primary.id == "a")
        #expect(facts.index(of: "b") == 1)
        #expect(facts.node("zz") == nil)
        #expect(facts.digest == Digest.sha256Hex(facts.json.canonicalJSON.utf8))
        #expect(facts.digest.count == 64)
    }

    @Test func digestIgnoresFormattingButNotContent() throws {
        let a = try FactsDocument.parse(issueExample)
        let b = try FactsDocument(json: example)
        let reformatted = try FactsDocument.parse(example.prettyJSON)
        #expect(a.digest == b.digest)
        #expect(a.digest == reformatted.digest)
        let changed = try FactsDocument(json: setting(example, "nodes.1.durable_lsn", .integer(1201)))
        #expect(changed.digest != a.digest)
    }

    @Test func keepsUnknownFieldsForPolicies() throws {
        let json = setting(setting(example, "site_notes", .string("db maintenance")), "nodes.1.disk_free_bytes", .integer(5))
        let facts = try FactsDocument(json: json)
        #expect(facts.json["site_notes"] == .string("db maintenance"))
        #expect(facts.json["nodes"]?.arrayValue?[1]["disk_free_bytes"] == .integer(5))
    }

    @Test func acceptsRequestWithoutCandidateOrKnownKindForTheRulesToJudge() throws {
        let noCandidate = try FactsDocument(json: setting(example, "request.candidate", nil))
        #expect(noCandidate.request.candidate == nil)
        #expect(noCandidate.candidate == nil)
        let nullCandidate = try FactsDocument(json: setting(example, "request.candidate", .null))
        #expect(nullCandidate.request.candidate == nil)
        let strange = try FactsDocument(json: setting(example, "request.kind", .string("takeover")))
        #expect(strange.request.promotionKind == nil)
        let elsewhere = try FactsDocument(json: setting(example, "request.candidate", .string("zz")))
        #expect(elsewhere.candidate == nil)
    }

    @Test(arguments: [
        ("schema", JSONValue.string("aerodb.facts/3"), "$.schema", "unknown schema"),
        ("schema", nil, "$.schema", "missing required field"),
        ("captured_at", JSONValue.string("yesterday"), "$.captured_at", "RFC 3339"),
        ("captured_at", JSONValue.integer(0), "$.captured_at", "expected a string"),
        ("request", JSONValue.array([]), "$.request", "expected an object"),
        ("request.kind", nil, "$.request.kind", "missing required field"),
        ("request.candidate", JSONValue.integer(2), "$.request.candidate", "expected a string or null"),
        ("request.requested_by", JSONValue.bool(true), "$.request.requested_by", "expected a string or null"),
        ("cluster.name", JSONValue.string(""), "$.cluster.name", "must not be empty"),
        ("cluster.epoch", JSONValue.number(7.5), "$.cluster.epoch", "expected a non-negative integer, found a non-integer number"),
        ("cluster.epoch", JSONValue.integer(-1), "$.cluster.epoch", "non-negative"),
        ("cluster.primary", JSONValue.string("zz"), "$.cluster.primary", "not among the nodes"),
        ("cluster.commit_mode", JSONValue.string("semi"), "$.cluster.commit_mode", "\"sync\" or \"async\""),
        ("cluster.sync_replicas", JSONValue.string("b"), "$.cluster.sync_replicas", "expected an array"),
        ("cluster.sync_replicas", JSONValue.array([.string("zz")]), "$.cluster.sync_replicas[0]", "not among the nodes"),
        ("cluster.sync_replicas", JSONValue.array([.string("b"), .string("b")]), "$.cluster.sync_replicas[1]", "listed twice"),
        ("cluster.labels", JSONValue.object(["freeze": .bool(true)]), "$.cluster.labels.freeze", "expected a string"),
        ("nodes", JSONValue.array([]), "$.nodes", "at least one node"),
        ("nodes.1.id", JSONValue.string("a"), "$.nodes[1].id", "duplicate node id \"a\" (also $.nodes[0])"),
        ("nodes.1.id", JSONValue.string(""), "$.nodes[1].id", "must not be empty"),
        ("nodes.1.role", JSONValue.string("witness"), "$.nodes[1].role", "\"primary\" or \"replica\""),
        ("nodes.1.reachable", JSONValue.null, "$.nodes[1].reachable", "expected a boolean"),
        ("nodes.1.epoch", JSONValue.string("7"), "$.nodes[1].epoch", "expected a non-negative integer or null"),
        ("nodes.1.epoch", JSONValue.null, "$.nodes[1].epoch", "a reachable node must report epoch"),
        ("nodes.1.durable_lsn", nil, "$.nodes[1].durable_lsn", "missing required field"),
        ("nodes.1.durable_lsn", JSONValue.null, "$.nodes[1].durable_lsn", "a reachable node must report durable_lsn"),
        ("nodes.1.applied_lsn", JSONValue.null, "$.nodes[1].applied_lsn", "a reachable node must report applied_lsn"),
        ("nodes.1.wal", JSONValue.null, "$.nodes[1].wal", "a reachable node must report wal"),
        ("nodes.1.wal.corrupt", nil, "$.nodes[1].wal.corrupt", "missing required field"),
        ("nodes.1.recovering", JSONValue.null, "$.nodes[1].recovering", "a reachable node must report recovering"),
        ("nodes.1.last_contact_ms", JSONValue.integer(-5), "$.nodes[1].last_contact_ms", "non-negative"),
        ("nodes.1.acked_lsn", nil, "$.nodes[1].acked_lsn", "missing required field"),
        ("nodes.0.epoch", JSONValue.integer(7), "$.nodes[0].epoch", "an unreachable node reported nothing, so epoch must be null"),
        ("nodes.0.following", JSONValue.string("b"), "$.nodes[0].following", "so following must be null"),
        ("nodes.0.labels", JSONValue.array([]), "$.nodes[0].labels", "expected an object"),
    ] as [(String, JSONValue?, String, String)])
    func rejectsUnusableDocumentsNamingThePath(field: String, value: JSONValue?, path: String, message: String) throws {
        let found = try #require(error(setting(example, field, value)), "accepted \(field) = \(String(describing: value))")
        #expect(found.path == path)
        #expect(found.message.contains(message), "\(found)")
        #expect(found.description.hasPrefix(path + ": "))
    }

    @Test func boundsTheNodeCount() throws {
        let node = try #require(example["nodes"]?.arrayValue?[1])
        var nodes: [JSONValue] = [try #require(example["nodes"]?.arrayValue?[0])]
        for index in 0..<FactsDocument.nodeCountMax { nodes.append(setting(node, "id", .string("r\(index)"))) }
        let found = try #require(error(setting(example, "nodes", .array(nodes))))
        #expect(found.path == "$.nodes")
        #expect(found.message == "10001 nodes; at most 10000 are read")
    }

    @Test func rejectsTextThatIsNotJSONWithLineAndColumn() throws {
        do {
            _ = try FactsDocument.parse("{\n  \"schema\": \"aerodb.facts/1\",\n}")
            Issue.record("accepted invalid JSON")
        } catch {
            #expect(error.path == "$")
            #expect(error.syntax?.line == 3)
            #expect(error.description.contains("not JSON: line 3, column 1"))
        }
        #expect(throws: FactsError.self) { try FactsDocument.parse("[]") }
    }

    @Test(arguments: [
        "2026-11-26T10:00:00Z", "2026-11-26t10:00:00z", "2026-11-26T10:00:00.123Z", "2026-11-26T10:00:60+01:00",
        "2026-11-26 10:00:00-05:30",
    ])
    func acceptsRFC3339Times(time: String) { #expect(RFC3339.isValid(time)) }

    @Test(arguments: [
        "2026-11-26", "2026-13-26T10:00:00Z", "2026-11-26T24:00:00Z", "2026-11-26T10:00:00", "2026-11-26T10:00:00.Z",
        "2026-11-26T10:00:00+0100", "2026-11-26T10:00:00Zjunk", "",
    ])
    func rejectsOtherTimes(time: String) { #expect(!RFC3339.isValid(time)) }

    @Test func swiftBuiltFactsRoundTripThroughJSON() throws {
        let nodes = [
            NodeFacts.unreachable(id: "a", role: .primary, labels: ["zone": "eu-1a"]),
            NodeFacts(id: "b", role: .replica, reachable: true, epoch: Epoch(7), durableLSN: LSN(1200), appliedLSN: LSN(1200),
                      primaryAckedLSN: LSN(1198), wal: WALFacts(continuous: true, corrupt: false), recovering: false,
                      following: "a", lastContactMs: 4100, labels: ["zone": "eu-1b"]),
        ]
        let built = try FactsDocument(
            request: FactsRequest(kind: .failover, candidate: "b", requestedBy: "ops-oncall"),
            cluster: ClusterFacts(name: "eu-prod", epoch: Epoch(7), primary: "a", commitMode: .sync, syncReplicas: ["b"]),
            nodes: nodes, capturedAt: "2026-11-26T10:00:00Z")
        let fromFile = try FactsDocument.parse(issueExample)
        #expect(built.request == fromFile.request)
        #expect(built.cluster == fromFile.cluster)
        #expect(built.nodes == fromFile.nodes)
        // The built JSON has every field explicit (cluster.labels too); it reads back identically.
        let reread = try FactsDocument.parse(built.json.canonicalJSON)
        #expect(reread == built)
        #expect(reread.digest == built.digest)
        #expect(reread.nodes == nodes)
        // Built by this build: aerodb.facts/2, with an (empty) history and the policy fields.
        var expected = setting(setting(setting(example, "cluster.labels", .object([:])), "cluster.sync_quorum", .null),
                               "cluster.epoch_start_lsn", .null)
        expected = setting(setting(expected, "schema", .string("aerodb.facts/2")), "cluster.history", .array([]))
        for index in 0..<2 {
            expected = setting(setting(expected, "nodes.\(index).policy_set_digest", .null), "nodes.\(index).engine_version", .null)
        }
        #expect(expected == built.json)
    }

    @Test func swiftBuiltFactsAreValidatedLikeFiles() {
        #expect(throws: FactsError(path: "$.cluster.primary", message: "\"zz\" is not among the nodes")) {
            try FactsDocument(
                request: FactsRequest(kind: .failover, candidate: "a", requestedBy: nil),
                cluster: ClusterFacts(name: "x", epoch: Epoch(1), primary: "zz", commitMode: .sync, syncReplicas: []),
                nodes: [.unreachable(id: "a", role: .replica)], capturedAt: "2026-11-26T10:00:00Z")
        }
        #expect(throws: FactsError.self) {
            try FactsDocument(
                request: FactsRequest(kind: .failover, candidate: "a", requestedBy: nil),
                cluster: ClusterFacts(name: "x", epoch: Epoch(1), primary: "a", commitMode: .sync, syncReplicas: []),
                nodes: [NodeFacts(id: "a", role: .primary, reachable: true)], capturedAt: "2026-11-26T10:00:00Z")
        }
    }
}
