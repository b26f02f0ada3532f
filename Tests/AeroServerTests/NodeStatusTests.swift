// NodeStatusTests.swift — the node fields of `GET /v1/status` are measured (NodeStatus.swift):
// each field follows the engine or the replica's link to its primary, driven here from a known
// state; and a tidy check that the one place they are built writes no field as a literal.
// Live processes reporting them: LiveFactsProcessTests.swift.
@testable import AeroServer
import AeroCore
import AeroReplication
import AeroStorage
import Foundation
import Testing

@Suite("Node status: every field measured")
struct NodeStatusTests {
    final class Fixture {
        let dir: String
        let engine: StorageEngine
        let journal: EventJournal
        let service: KVService
        let observer = ReplicationFollower.Observer()

        init(replica: Bool) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-status-\(UUID().uuidString)").path
            var options = StorageOptions()
            options.initialAuthority = replica
                ? Authority(nodeID: "n2", role: .replica, epoch: Epoch(1), following: "n1",
                            history: [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1))])
                : .standalonePrimary("n2")
            engine = try StorageEngine.open(directory: dir, options: options)
            journal = try EventJournal(directory: dir, node: "n2")
            let config = ServerConfig.standalone(id: "n2", dataDir: dir, http: HostPort(host: "127.0.0.1", port: 0))
            service = KVService(config: config, engine: engine, journal: journal, metrics: ServerMetrics(replicas: []),
                                replicaObserver: replica ? observer : nil)
        }

        func facts(nowMs: UInt64) -> NodeFacts { NodeStatus.facts(service: service, nowMs: nowMs) }

        func hello(durable: UInt64) -> PeerMessage {
            .hello(Hello(nodeID: "n1", epoch: Epoch(1), lastDurableLSN: LSN(durable), lastDurableEpoch: Epoch(1),
                         history: [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1))]))
        }

        deinit {
            engine.close()
            try? journal.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test("a primary's acked_lsn is what it answered 200 for, not its durable LSN; replica fields are null on it")
    func primaryAcked() async throws {
        let f = try Fixture(replica: false)
        // Nothing acknowledged by this process yet: unknown (null), not "nothing" (0).
        #expect(f.facts(nowMs: 0).ackedLSN == nil)
        for i in 0..<3 { #expect(await f.service.put(key: "k\(i)", value: [1]).status == 200) }
        let facts = f.facts(nowMs: 0)
        #expect(facts.ackedLSN == f.engine.durableLSN && facts.ackedLSN == LSN(3))
        // Durable but never answered to a client (a replicated append would be the same).
        var transaction = Transaction()
        transaction.put("unacked", [2])
        _ = try await f.engine.commit(transaction)
        let after = f.facts(nowMs: 0)
        #expect(after.durableLSN == LSN(4))
        #expect(after.ackedLSN == LSN(3), "acked_lsn must not follow durable_lsn: \(after)")
        #expect(after.primaryAckedLSN == nil && after.lastContactMs == nil && after.following == nil)
    }

    @Test("a replica: primary_acked_lsn from heartbeats, last_contact_ms from the last message, null before any")
    func replicaLink() throws {
        let f = try Fixture(replica: true)
        let before = f.facts(nowMs: 1_000)
        #expect(before.ackedLSN == nil)
        #expect(before.primaryAckedLSN == nil, "no heartbeat heard yet")
        #expect(before.lastContactMs == nil, "no message heard yet")
        f.observer.heard(f.hello(durable: 0), nowMs: 1_000, localDurable: f.engine.durableLSN)
        #expect(f.facts(nowMs: 1_250).lastContactMs == 250)
        #expect(f.facts(nowMs: 1_250).primaryAckedLSN == nil)
        f.observer.heard(.heartbeat(Heartbeat(primaryEpoch: Epoch(1), primaryAckedLSN: LSN(7), primaryDurableLSN: LSN(9))),
                         nowMs: 2_000, localDurable: f.engine.durableLSN)
        f.observer.progress(acked: LSN(7), durable: LSN(9))
        let heard = f.facts(nowMs: 2_040)
        #expect(heard.primaryAckedLSN == LSN(7))
        #expect(heard.lastContactMs == 40)
        #expect(heard.following == NodeID("n1"))
    }

    @Test("recovering until this session reaches the primary's position at connect; lag afterwards is not recovery")
    func recoveringUntilCaughtUp() throws {
        let f = try Fixture(replica: true)
        #expect(f.facts(nowMs: 0).recovering == false, "no session yet: nothing to catch up with")
        f.observer.heard(f.hello(durable: 5), nowMs: 0, localDurable: f.engine.durableLSN)
        #expect(f.facts(nowMs: 0).recovering == true, "durable 0 < the primary's 5 at connect")
        f.observer.localDurable(LSN(4))
        #expect(f.facts(nowMs: 0).recovering == true)
        f.observer.localDurable(LSN(5))
        #expect(f.facts(nowMs: 0).recovering == false, "reached the position at connect")
        f.observer.beginSession()
        f.observer.heard(f.hello(durable: 0), nowMs: 0, localDurable: f.engine.durableLSN)
        #expect(f.facts(nowMs: 0).recovering == false)
    }

    @Test("wal.continuous false and recovering true while the primary says re-seed, until a re-seed completes")
    func reseedNeeded() throws {
        let f = try Fixture(replica: true)
        #expect(f.facts(nowMs: 0).wal == WALFacts(continuous: true, corrupt: false))
        f.observer.ended(.mustReseed(MustReseed(reason: "WAL before 10 removed", checkpointLSN: LSN(10))))
        #expect(f.facts(nowMs: 0).wal?.continuous == false)
        #expect(f.facts(nowMs: 0).recovering == true)
        f.observer.reseeding(true)
        #expect(f.facts(nowMs: 0).recovering == true)
        f.observer.reseeding(false, succeeded: true)
        #expect(f.facts(nowMs: 0).wal?.continuous == true)
        #expect(f.facts(nowMs: 0).recovering == false)
    }

    @Test("wal.continuous false after a replicated record did not continue the log")
    func gap() throws {
        let f = try Fixture(replica: true)
        f.observer.storageFailed("replicated append refused: \(StorageError.replicationGap(expected: LSN(3), received: LSN(5)))")
        #expect(f.facts(nowMs: 0).wal?.continuous == false)
        let other = try Fixture(replica: true)
        other.observer.storageFailed("record 4 has unknown kind 9")
        #expect(other.facts(nowMs: 0).wal?.continuous == true, "not every storage refusal is a gap")
    }

    @Test("the status's node is the typed NodeFacts, read back by the facts reader unchanged")
    func statusIsNodeFacts() throws {
        let f = try Fixture(replica: true)
        f.observer.heard(f.hello(durable: 0), nowMs: CommitWaiters.monotonicMs(), localDurable: f.engine.durableLSN)
        let status = try JSONParser.parse(f.service.status().bodyText)
        let node = try #require(status["node"])
        let read = try NodeFacts(json: node, path: "$.node")
        #expect(read.id == NodeID("n2") && read.role == .replica && read.recovering == false)
        #expect(read.lastContactMs != nil)
    }
}
