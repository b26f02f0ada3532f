import AeroCore
import AeroReplication
import AeroServer
import AeroStorage
import AeroTestSupport
import Foundation
import Testing

/// A write whose sync replicas acknowledged it, refused only because the node learned a newer
/// epoch before answering (KVService rule 8's second check), is already on its sync replicas and
/// may survive into the new epoch. Its REPL-STALE-EPOCH must say so (and name its LSN), not read
/// like the refusal of a write that was never made.
@Suite("Stale epoch after a write says it was written")
struct StaleEpochAfterWriteSaysWrittenTests {
    /// Bound on waiting for the write to reach its commit wait: it does so at once, but its
    /// local fsync on a machine shared by several builds has been seen to take seconds. A bound
    /// against a hang, not a timing check.
    static let reachWaitMs = 60_000

    @Test("REPL-STALE-EPOCH after the write was made names its LSN and says it may be committed")
    func refusedAfterWrite() async throws {
        let waiters = CommitWaiters(mode: .sync(replicas: ["n2"]), localDurableLSN: .zero, timeoutMs: 60_000, waitersMax: 8)
        waiters.start()
        defer { waiters.stop() }
        let f = try KVServiceTests.Fixture(hooks: PrimaryHooks(walDurable: { _ in }, acknowledged: { _ in }, waiters: waiters))
        let service = f.service
        let put = Task { await service.put(key: "k", value: [1]) }
        _ = await Deadline.waitUntil(timeoutMs: Self.reachWaitMs) { waiters.waiterCount > 0 }
        try #require(waiters.waiterCount == 1, "the write never reached its commit wait")
        await service.learnedHigherEpoch(Epoch(5), from: "n3")
        waiters.replicaDurable("n2", LSN(1))
        let refused = await put.value

        #expect(refused.status == 409 && KVServiceTests.code(refused) == "REPL-STALE-EPOCH")
        #expect(refused.bodyText.contains("LSN 1"), "\(refused.bodyText)")
        #expect(refused.bodyText.contains("may"), "\(refused.bodyText)")
        let facts = (try JSONParser.parse(refused.bodyText))["error"]?["explanation"]?["facts"]
        #expect(facts?["lsn"] == .integer(1))
    }
}
