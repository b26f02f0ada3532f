import AeroCore
import AeroServer
import AeroStorage
import Foundation
import Testing

/// Trip tests for the re-seed source route's refusal ids (docs/rule-ids.md), against KVService
/// without HTTP: a real request answered by the real engine.
@Suite struct ReseedRouteRefusalTests {
    @Test func aReplicaIsNoReseedSource() async throws {
        let f = try KVServiceTests.Fixture(authority: .newReplica("n1", following: "n2"))
        let response = await f.service.checkpointChunk(lsnText: nil, offsetText: nil)
        #expect(response.status == 409 && KVServiceTests.code(response) == RuleID.reseedNotPrimary.rawValue, "\(response.bodyText)")
    }

    @Test func aCheckpointReplacedByANewerOneIsGone() async throws {
        let f = try KVServiceTests.Fixture()
        _ = await f.service.put(key: "k", value: [1])
        let first = await f.service.checkpointChunk(lsnText: nil, offsetText: nil)
        #expect(first.status == 200, "\(first.bodyText)")
        let lsn = try #require(first.headers.first { $0.0 == "X-AeroDB-Checkpoint-LSN" }.flatMap { UInt64($0.1) })
        _ = await f.service.put(key: "k", value: [2])
        _ = try f.engine.checkpointBlocking()
        let gone = await f.service.checkpointChunk(lsnText: "\(lsn)", offsetText: "0")
        #expect(gone.status == 410 && KVServiceTests.code(gone) == RuleID.reseedCheckpointGone.rawValue, "\(gone.bodyText)")
    }
}
