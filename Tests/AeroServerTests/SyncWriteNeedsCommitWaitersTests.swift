import AeroCore
import AeroReplication
import AeroServer
import AeroStorage
import Foundation
import Testing

/// A primary of a sync-mode cluster answers 200 only after its sync replicas acknowledged
/// (KVService rule 6) — also while its commit waiters are not installed: between a promotion's
/// authority commit (the engine takes writes) and `installRole(hooks:)`, or for good when
/// `startPrimary` failed after the authority was committed.
@Suite("Sync write needs commit waiters")
struct SyncWriteNeedsCommitWaitersTests {
    @Test("a promoted sync-mode primary without commit waiters does not acknowledge a write")
    func promotedWithoutWaiters() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-syncwait-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = StorageOptions()
        options.initialAuthority = Authority(nodeID: "n2", role: .replica, epoch: Epoch(1), following: "n1",
                                             history: [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1))])
        let engine = try StorageEngine.open(directory: dir, options: options)
        defer { engine.close() }
        let journal = try EventJournal(directory: dir, node: "n2")
        defer { try? journal.close() }
        var config = ServerConfig.standalone(id: "n2", dataDir: dir, http: HostPort(host: "127.0.0.1", port: 0))
        config.members = ["n1", "n2"].map {
            MemberConfig(id: NodeID($0), http: HostPort(host: "127.0.0.1", port: 1), peer: HostPort(host: "127.0.0.1", port: 2))
        }
        config.commitMode = .sync
        config.syncReplicas = ["n2"]
        // The service as a replica has it: no primary hooks. The promotion commits the authority first.
        let service = KVService(config: config, engine: engine, journal: journal, metrics: ServerMetrics(replicas: ["n1"]))
        _ = try await engine.promote(to: Epoch(2))

        let response = await service.put(key: "k", value: [1])
        #expect(response.status != 200, "acknowledged with no sync replica holding it: \(response.bodyText)")
        let code = (try? JSONParser.parse(response.bodyText))?["error"]?["code"]?.stringValue
        #expect(code == ErrorCode.syncTimeout.rawValue)
    }
}
