import AeroCore
import AeroReplication
import AeroStorage
import AeroTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Two storage engines in one process, a primary and a replica, connected over loopback TCP by
/// ReplicationSource and ReplicationFollower.
@Suite("Replication over loopback (in process)", .serialized)
struct ReplicationLinkTests {
    /// Bound on waiting for the replica to catch up (a bound, not a timing check).
    static let catchUpWaitMs = 30_000

    final class Pair {
        let root: String
        let primary: StorageEngine
        let replica: StorageEngine
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let source: ReplicationSource
        let progress = NIOLockedBox()

        let higherEpochs = NIOLockedBox()

        init(replicaAuthority: Authority = .newReplica("n2", following: "n1")) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-link-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            var primaryOptions = StorageOptions()
            primaryOptions.initialAuthority = .standalonePrimary("n1")
            primary = try StorageEngine.open(directory: root + "/n1", options: primaryOptions)
            var replicaOptions = StorageOptions()
            replicaOptions.initialAuthority = replicaAuthority
            replica = try StorageEngine.open(directory: root + "/n2", options: replicaOptions)
            let progress = self.progress
            source = ReplicationSource(
                engine: primary, nodeID: "n1", members: ["n1", "n2"], group: group, heartbeatIntervalMs: 20,
                callbacks: .init(replicaProgress: { _, durable, _ in progress.raise(to: durable) },
                                 higherEpochSeen: { [higherEpochs] epoch, _ in higherEpochs.raise(to: LSN(epoch.rawValue)) }))
        }

        func shutdown() async throws {
            await source.stop()
            try await group.shutdownGracefully()
            primary.close()
            replica.close()
            try? FileManager.default.removeItem(atPath: root)
        }

        func commit(_ count: Int, from start: Int = 0) async throws -> LSN {
            var last = LSN.zero
            for i in start..<(start + count) {
                var transaction = Transaction()
                transaction.put("key-\(i)", Array("value-\(i)".utf8))
                last = try await primary.commit(transaction)
                source.walDurable(last)
            }
            return last
        }
    }

    /// The highest durable LSN a replica acknowledged.
    final class NIOLockedBox: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var value = LSN.zero
        func raise(to lsn: LSN) { lock.lock(); value = max(value, lsn); lock.unlock() }
        var current: LSN { lock.lock(); defer { lock.unlock() }; return value }
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        _ = await Deadline.waitUntil(timeoutMs: catchUpWaitMs) { condition() }
    }

    static func allRecords(_ engine: StorageEngine) throws -> [WALRecord] {
        var out: [WALRecord] = []
        var next = LSN(1)
        while next <= engine.durableLSN {
            guard case .records(let records) = try engine.readWAL(from: next), !records.isEmpty else { break }
            out += records
            next = records[records.count - 1].lsn.next
        }
        return out
    }

    @Test("a fresh replica adopts the primary's epoch and history and copies the WAL byte for byte")
    func replicatesByteForByte() async throws {
        let pair = try Pair()
        // Some history before the replica connects, some after.
        _ = try await pair.commit(300)
        let port = try await pair.source.start(host: "127.0.0.1", port: 0)
        let observer = ReplicationFollower.Observer()
        let channel = try await ReplicationFollower.connect(
            engine: pair.replica, expectedPrimary: "n1", host: "127.0.0.1", port: port, group: pair.group,
            observer: observer, connectTimeoutMs: 5000)
        let last = try await pair.commit(700, from: 300)
        try await Self.waitUntil { pair.replica.durableLSN >= last && pair.progress.current >= last }

        #expect(pair.replica.durableLSN == last)
        #expect(pair.progress.current == last, "the primary saw the replica's durable ack")
        #expect(pair.replica.authority.epoch == pair.primary.authority.epoch)
        #expect(pair.replica.authority.history == pair.primary.authority.history)
        #expect(pair.replica.authority.following == "n1")
        #expect(try Self.allRecords(pair.replica) == Self.allRecords(pair.primary))
        #expect(pair.replica.get("key-999") == Array("value-999".utf8))
        #expect(observer.storageError == nil)
        // Heartbeats carry the acknowledged LSN.
        pair.source.acknowledged(through: last)
        try await Self.waitUntil { observer.primaryAckedLSN >= last }
        #expect(observer.primaryAckedLSN == last)

        try await channel.close()
        try await pair.shutdown()
    }

    @Test("a replica of another history is refused (REPL-HISTORY-MISMATCH) and appends nothing")
    func historyMismatchRefused() async throws {
        let foreign = Authority(nodeID: "n2", role: .replica, epoch: Epoch(1), following: "n1",
                                history: [EpochHistoryEntry(epoch: Epoch(1), primary: "n3", startLSN: LSN(1))])
        let pair = try Pair(replicaAuthority: foreign)
        _ = try await pair.commit(10)
        let port = try await pair.source.start(host: "127.0.0.1", port: 0)
        let observer = ReplicationFollower.Observer()
        let channel = try await ReplicationFollower.connect(
            engine: pair.replica, expectedPrimary: "n1", host: "127.0.0.1", port: port, group: pair.group,
            observer: observer, connectTimeoutMs: 5000)
        try await channel.closeFuture.get()
        guard case .refusedByPeer(let refuse)? = observer.end else {
            Issue.record("expected a refusal, got \(String(describing: observer.end))")
            try await pair.shutdown()
            return
        }
        #expect(refuse.ruleID == RuleID.replHistoryMismatch.rawValue)
        #expect(pair.replica.durableLSN == .zero)
        try await pair.shutdown()
    }

    @Test("a replica at a higher epoch: the primary learns it is stale and streams nothing (REPL-STALE-EPOCH)")
    func staleEpochPrimary() async throws {
        let ahead = Authority(nodeID: "n2", role: .replica, epoch: Epoch(5), following: "n3",
                              history: [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1)),
                                        EpochHistoryEntry(epoch: Epoch(5), primary: "n3", startLSN: LSN(1))])
        let pair = try Pair(replicaAuthority: ahead)
        _ = try await pair.commit(5)
        let port = try await pair.source.start(host: "127.0.0.1", port: 0)
        let observer = ReplicationFollower.Observer()
        let channel = try await ReplicationFollower.connect(
            engine: pair.replica, expectedPrimary: "n1", host: "127.0.0.1", port: port, group: pair.group,
            observer: observer, connectTimeoutMs: 5000)
        try await channel.closeFuture.get()
        guard case .refusedByPeer(let refuse)? = observer.end else {
            Issue.record("expected a refusal, got \(String(describing: observer.end))")
            try await pair.shutdown()
            return
        }
        #expect(refuse.ruleID == RuleID.replStaleEpoch.rawValue)
        #expect(pair.higherEpochs.current == LSN(5), "the primary was told it is stale")
        #expect(pair.replica.durableLSN == .zero)
        try await pair.shutdown()
    }
}
