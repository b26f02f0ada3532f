import AeroCore
import AeroReplication
import Foundation
import Testing

@Suite("Commit quorum")
struct CommitQuorumTests {
    @Test("async: committed once durable locally")
    func asyncMode() {
        var q = CommitQuorum(mode: .async, localDurableLSN: LSN(5))
        #expect(q.enqueue(lsn: LSN(5), deadlineMs: 100) == .committed)
        guard case .queued(let a) = q.enqueue(lsn: LSN(6), deadlineMs: 100) else { Issue.record("not queued"); return }
        #expect(q.replicaDurable("n2", LSN(10)) == [], "acks of non-sync replicas change nothing")
        #expect(q.localDurable(LSN(6)) == [a])
        #expect(q.waiterCount == 0)
    }

    @Test("sync: committed only once every sync replica is durable too")
    func syncMode() {
        var q = CommitQuorum(mode: .sync(replicas: ["n2", "n3"]), localDurableLSN: .zero)
        guard case .queued(let a) = q.enqueue(lsn: LSN(1), deadlineMs: 100),
              case .queued(let b) = q.enqueue(lsn: LSN(2), deadlineMs: 100) else { Issue.record("not queued"); return }
        #expect(q.localDurable(LSN(2)) == [])
        #expect(q.replicaDurable("n2", LSN(2)) == [])
        #expect(q.missingReplicas(for: LSN(1)) == ["n3"])
        #expect(q.replicaDurable("n3", LSN(1)) == [a])
        #expect(q.committedLSN == LSN(1))
        #expect(q.replicaDurable("n4", LSN(9)) == [], "not a sync replica")
        #expect(q.replicaDurable("n3", LSN(2)) == [b])
    }

    @Test("a replica's durable position never moves back (a reconnect's first ack)")
    func monotonic() {
        var q = CommitQuorum(mode: .sync(replicas: ["n2"]), localDurableLSN: LSN(10))
        _ = q.replicaDurable("n2", LSN(8))
        _ = q.replicaDurable("n2", LSN(3))
        #expect(q.replicaDurableLSN["n2"] == LSN(8))
        #expect(q.committedLSN == LSN(8))
    }

    @Test("out-of-order enqueues are released in LSN order")
    func ordering() {
        var q = CommitQuorum(mode: .async, localDurableLSN: .zero)
        guard case .queued(let c) = q.enqueue(lsn: LSN(3), deadlineMs: 100),
              case .queued(let a) = q.enqueue(lsn: LSN(1), deadlineMs: 100),
              case .queued(let b) = q.enqueue(lsn: LSN(2), deadlineMs: 100) else { Issue.record("not queued"); return }
        #expect(q.localDurable(LSN(2)) == [a, b])
        #expect(q.localDurable(LSN(3)) == [c])
    }

    @Test("deadlines expire waiters with the replicas they were missing (REPL-SYNC-TIMEOUT)")
    func expiry() {
        var q = CommitQuorum(mode: .sync(replicas: ["n2"]), localDurableLSN: LSN(0))
        guard case .queued(let a) = q.enqueue(lsn: LSN(1), deadlineMs: 100),
              case .queued(let b) = q.enqueue(lsn: LSN(2), deadlineMs: 200) else { Issue.record("not queued"); return }
        _ = q.localDurable(LSN(2))
        #expect(q.nextDeadlineMs == 100)
        #expect(q.expire(nowMs: 99).isEmpty)
        let expired = q.expire(nowMs: 100)
        #expect(expired.map(\.id) == [a] && expired.map(\.missing) == [["n2"]] && expired.map(\.lsn) == [LSN(1)])
        #expect(q.replicaDurable("n2", LSN(2)) == [b], "a later write still commits when the replica returns")
        #expect(q.expire(nowMs: 1000).isEmpty)
    }

    @Test("the queue is bounded: beyond waitersMax a write is refused, not queued")
    func bounded() {
        var q = CommitQuorum(mode: .async, localDurableLSN: .zero, waitersMax: 2)
        _ = q.enqueue(lsn: LSN(1), deadlineMs: 1)
        _ = q.enqueue(lsn: LSN(2), deadlineMs: 1)
        #expect(q.enqueue(lsn: LSN(3), deadlineMs: 1) == .backlogFull)
        #expect(q.waiterCount == 2)
        #expect(q.failAll().count == 2)
        #expect(q.waiterCount == 0)
    }

    /// Randomised: whatever the order of acks, every waiter leaves exactly once, and only when
    /// committed or expired. Seed: AERODB_TEST_SEED (printed), 200 rounds.
    @Test("randomised acks and deadlines keep invariant 2")
    func randomised() {
        let seed = ProcessInfo.processInfo.environment["AERODB_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        print("CommitQuorumTests.randomised seed=\(seed) (replay: AERODB_TEST_SEED=\(seed))")
        var rng = SplitMix64(seed: seed)
        for _ in 0..<200 {
            var q = CommitQuorum(mode: .sync(replicas: ["n2", "n3"]), localDurableLSN: .zero)
            var outstanding: [CommitQuorum.WaiterID: LSN] = [:]
            var nextLSN: UInt64 = 1
            var local: UInt64 = 0, r2: UInt64 = 0, r3: UInt64 = 0
            for now in UInt64(0)..<50 {
                switch rng.next() % 5 {
                case 0:
                    if case .queued(let id) = q.enqueue(lsn: LSN(nextLSN), deadlineMs: now + rng.next() % 20) { outstanding[id] = LSN(nextLSN) }
                    nextLSN += 1
                case 1:
                    local = max(local, min(nextLSN - 1, local + rng.next() % 3))
                    for id in q.localDurable(LSN(local)) { #expect(outstanding.removeValue(forKey: id)! <= q.committedLSN) }
                case 2:
                    r2 = min(local, r2 + rng.next() % 3)
                    for id in q.replicaDurable("n2", LSN(r2)) { #expect(outstanding.removeValue(forKey: id)! <= q.committedLSN) }
                case 3:
                    r3 = min(local, r3 + rng.next() % 3)
                    for id in q.replicaDurable("n3", LSN(r3)) { #expect(outstanding.removeValue(forKey: id)! <= q.committedLSN) }
                default:
                    for e in q.expire(nowMs: now) { #expect(outstanding.removeValue(forKey: e.id) == e.lsn) }
                }
                #expect(q.committedLSN == LSN(min(local, r2, r3)))
            }
            #expect(q.waiterCount == outstanding.count)
        }
    }
}

/// A small deterministic generator for replayable tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
