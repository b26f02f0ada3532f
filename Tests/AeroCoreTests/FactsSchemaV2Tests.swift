// FactsSchemaV2Tests.swift — aerodb.facts/2 (FactsHistory.swift): what it adds is required in
// /2 and read with its path in errors; /1 documents still read (journaled decisions replay).
import Testing
@testable import AeroCore
import AeroTestSupport

@Suite struct FactsSchemaV2Tests {
    /// The issue's /1 example written again as /2 by this build.
    static func v2() throws -> FactsDocument {
        let v1 = try FactsDocument.parse(issueExample)
        var cluster = v1.cluster
        cluster.history = [
            EpochFacts(epoch: Epoch(1), primary: "a", startLSN: LSN(1), kind: "initial", decisionID: nil, startedAt: nil),
            EpochFacts(epoch: Epoch(7), primary: "a", startLSN: LSN(900), kind: "switchover", decisionID: "a-1-1", startedAt: "2026-11-26T09:00:00Z"),
        ]
        var nodes = v1.nodes
        nodes[1].policySetDigest = String(repeating: "0f", count: 32)
        nodes[1].engineVersion = AeroVersion.string
        return try FactsDocument(request: v1.request, cluster: cluster, nodes: nodes, capturedAt: v1.capturedAt)
    }

    func error(_ json: JSONValue) -> FactsError? {
        do {
            _ = try FactsDocument(json: json)
            return nil
        } catch {
            return error
        }
    }

    @Test func aV1DocumentStillReads() throws {
        let facts = try FactsDocument.parse(issueExample)
        #expect(facts.schema == FactsDocument.schemaVersion1)
        #expect(facts.cluster.history.isEmpty)
        #expect(facts.nodes.allSatisfy { $0.policySetDigest == nil && $0.engineVersion == nil })
    }

    @Test func thisBuildWritesV2AndReadsItBack() throws {
        let facts = try Self.v2()
        #expect(facts.schema == "aerodb.facts/2")
        #expect(facts.cluster.history.map(\.epoch) == [Epoch(1), Epoch(7)])
        #expect(facts.cluster.history[1].startedAt == "2026-11-26T09:00:00Z")
        #expect(facts.nodes[1].policySetDigest?.count == 64)
        #expect(try FactsDocument.parse(facts.json.canonicalJSON) == facts)
    }

    @Test func v2RequiresItsFields() throws {
        let json = try Self.v2().json
        #expect(error(setting(json, "cluster.history", nil))?.path == "$.cluster.history")
        #expect(error(setting(json, "nodes.1.policy_set_digest", nil))?.path == "$.nodes[1].policy_set_digest")
        #expect(error(setting(json, "nodes.1.engine_version", nil))?.path == "$.nodes[1].engine_version")
        let unreachable = error(setting(json, "nodes.0.policy_set_digest", .string("ab")))
        #expect(unreachable?.path == "$.nodes[0].policy_set_digest")
        #expect(unreachable?.message.contains("unreachable") == true)
    }

    @Test func historyIsValidated() throws {
        let json = try Self.v2().json
        let backwards = error(setting(json, "cluster.history.1.epoch", .integer(1)))
        #expect(backwards?.path == "$.cluster.history[1].epoch")
        let badTime = error(setting(json, "cluster.history.1.started_at", .string("yesterday")))
        #expect(badTime?.path == "$.cluster.history[1].started_at")
        #expect(badTime?.message.contains("\"yesterday\"") == true)
        let tooMany = JSONValue.array((1...(FactsDocument.historyEntriesMax + 1)).map { epoch in
            EpochFacts(epoch: Epoch(UInt64(epoch)), primary: "a", startLSN: LSN(UInt64(epoch)), kind: nil, decisionID: nil, startedAt: nil).json
        })
        #expect(error(setting(json, "cluster.history", tooMany))?.message.contains("at most \(FactsDocument.historyEntriesMax)") == true)
    }

    @Test func anUnknownSchemaNamesBoth() throws {
        let json = try Self.v2().json
        let unknown = error(setting(json, "schema", .string("aerodb.facts/3")))
        #expect(unknown?.path == "$.schema")
        #expect(unknown?.message.contains("\"aerodb.facts/1\" and \"aerodb.facts/2\"") == true)
    }
}
