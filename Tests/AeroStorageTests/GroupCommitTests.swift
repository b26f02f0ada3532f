import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Testing

/// The group-commit machine on its own (no files, no threads): E1, E2, E6 through its
/// transitions, and a seeded random walk against a model of what may be acknowledged.
@Suite struct GroupCommitTests {
    typealias Machine = GroupCommit<Int>

    static func record(_ lsn: UInt64, epoch: UInt64 = 1) -> WALRecord {
        WALRecord(kind: .transaction, epoch: Epoch(epoch), lsn: LSN(lsn), payload: TransactionCodec.encode([.put(key: "k\(lsn)", value: [1])]))
    }

    static func resumed(_ outcome: Machine.Outcome) -> [Int] {
        guard case .durable(_, let waiters) = outcome else {
            Issue.record("expected a durable outcome, got \(outcome)")
            return []
        }
        return waiters.map(\.completion)
    }

    @Test func aFlushTakesEverythingPendingAndResumesExactlyTheWaitersItCovers() {
        var m = Machine(recoveredThrough: LSN(10), epoch: Epoch(1))
        #expect(!m.canBeginFlush, "nothing pending")
        m.enqueue(Self.record(11))
        m.addWaiter(for: LSN(11), 11)
        m.enqueue(Self.record(12))
        m.addWaiter(for: LSN(12), 12)
        let batch = m.beginFlush()
        #expect(batch.firstLSN == LSN(11) && batch.lastLSN == LSN(12) && batch.records == 2)
        #expect(m.pendingBytes == 0 && !m.canBeginFlush, "one flush at a time")
        // Records arriving while the sync runs wait for the next flush (E6).
        m.enqueue(Self.record(13))
        m.addWaiter(for: LSN(13), 13)
        #expect(m.durableLSN == LSN(10) && m.lastLSN == LSN(13))
        #expect(Self.resumed(m.finishFlush(error: nil)) == [11, 12])
        #expect(m.durableLSN == LSN(12) && m.waiters.map(\.completion) == [13] && m.canBeginFlush)
        let next = m.beginFlush()
        #expect(next.firstLSN == LSN(13) && next.lastLSN == LSN(13))
        #expect(Self.resumed(m.finishFlush(error: nil)) == [13])
        #expect(m.durableLSN == LSN(13) && m.waiters.isEmpty)
    }

    @Test func waitersAreKeptInLSNOrderWhateverTheOrderTheyArrive() {
        var m = Machine(recoveredThrough: .zero, epoch: .zero)
        for lsn in 1...4 { m.enqueue(Self.record(UInt64(lsn))) }
        m.addWaiter(for: LSN(4), 40)
        m.addWaiter(for: LSN(2), 20)
        m.addWaiter(for: LSN(4), 41)
        m.addWaiter(for: LSN(1), 10)
        #expect(m.waiters.map(\.completion) == [10, 20, 40, 41], "LSN order; equal LSNs in arrival order")
        _ = m.beginFlush()
        #expect(Self.resumed(m.finishFlush(error: nil)) == [10, 20, 40, 41])
    }

    @Test func aFailedFlushIsStickyAndFailsEveryWaiterPendingOrInFlight() {
        var m = Machine(recoveredThrough: LSN(5), epoch: Epoch(2))
        m.enqueue(Self.record(6, epoch: 2))
        m.addWaiter(for: LSN(6), 6)
        _ = m.beginFlush()
        m.enqueue(Self.record(7, epoch: 2))
        m.addWaiter(for: LSN(7), 7)
        guard case .failed(let reason, let failed) = m.finishFlush(error: "EIO") else {
            Issue.record("a failed flush must fail")
            return
        }
        #expect(reason == "EIO" && failed.map(\.completion) == [6, 7])
        #expect(m.failure == "EIO" && m.durableLSN == LSN(5), "E2: nothing was acknowledged")
        #expect(m.pendingBytes == 0 && !m.canBeginFlush && m.waiters.isEmpty, "what was pending is dropped, never written")
        #expect(m.lastLSN == LSN(7), "assigned LSNs are not reused")
    }

    @Test func aReseedMovesThePositionsForwardWithTheSlotHeld() {
        var m = Machine(recoveredThrough: LSN(3), epoch: Epoch(1))
        m.beginReseed()
        #expect(m.isReseeding && !m.canBeginFlush)
        m.finishReseed(at: LSN(40), epoch: Epoch(2))
        #expect(m.slot == .idle && m.durableLSN == LSN(40) && m.lastLSN == LSN(40) && m.durableEpoch == Epoch(2))
        m.enqueue(Self.record(41, epoch: 2))
        #expect(m.canBeginFlush)

        var failing = Machine(recoveredThrough: LSN(3), epoch: Epoch(1))
        failing.beginReseed()
        failing.failReseed("rename failed")
        #expect(failing.failure == "rename failed" && failing.durableLSN == LSN(3) && failing.slot == .idle)
    }

    /// A seeded random walk: commits, waits, flushes that succeed or (rarely) fail. Each waiter
    /// completes exactly once; with success only when its LSN was durable, in LSN order across
    /// the whole run; none succeeds after the failure.
    @Test func aRandomWalkNeverAcknowledgesWhatIsNotDurable() {
        let seed = testSeed("GroupCommitTests")
        var random = SeededRandom(seed: seed)
        for run in 0..<50 {
            var m = Machine(recoveredThrough: .zero, epoch: .zero)
            var lsnOf: [Int: LSN] = [:]
            var completed: Set<Int> = []
            var lastSucceeded = LSN.zero
            var nextToken = 0
            var failed = false
            for _ in 0..<400 {
                switch random.next(below: 10) {
                case 0...4 where !failed:
                    let epoch = max(m.lastEpoch.rawValue, 1) + (random.next(below: 20) == 0 ? 1 : 0)
                    m.enqueue(Self.record(m.lastLSN.rawValue + 1, epoch: epoch))
                    if random.next(below: 3) > 0 {
                        m.addWaiter(for: m.lastLSN, nextToken)
                        lsnOf[nextToken] = m.lastLSN
                        nextToken += 1
                    }
                case 5...7 where m.canBeginFlush:
                    _ = m.beginFlush()
                case 8...9 where m.isFlushing:
                    let fail = random.next(below: 40) == 0
                    switch m.finishFlush(error: fail ? "injected" : nil) {
                    case .durable(let durable, let resumed):
                        for waiter in resumed {
                            #expect(waiter.lsn <= durable && waiter.lsn >= lastSucceeded, "seed \(seed) run \(run)")
                            #expect(completed.insert(waiter.completion).inserted, "seed \(seed) run \(run): resumed twice")
                            lastSucceeded = waiter.lsn
                        }
                    case .failed(_, let all):
                        failed = true
                        for waiter in all { #expect(completed.insert(waiter.completion).inserted, "seed \(seed) run \(run)") }
                    }
                default:
                    break
                }
            }
            // Nothing waits for an LSN that is durable (it would have been resumed).
            #expect(m.waiters.allSatisfy { $0.lsn > m.durableLSN }, "seed \(seed) run \(run)")
            #expect(completed.count + m.waiters.count == lsnOf.count, "seed \(seed) run \(run): every waiter resumed or waiting")
        }
    }

    @Test func illegalTransitionsTrap() async {
        await #expect(processExitsWith: .failure, "a flush with nothing pending") {
            var m = GroupCommit<Int>(recoveredThrough: .zero, epoch: .zero)
            _ = m.beginFlush()
        }
        await #expect(processExitsWith: .failure, "a record that is not the next LSN") {
            var m = GroupCommit<Int>(recoveredThrough: LSN(4), epoch: Epoch(1))
            m.enqueue(WALRecord(kind: .epochStart, epoch: Epoch(1), lsn: LSN(6), payload: []))
        }
        await #expect(processExitsWith: .failure, "a waiter after the failure (E2)") {
            var m = GroupCommit<Int>(recoveredThrough: .zero, epoch: .zero)
            m.enqueue(WALRecord(kind: .epochStart, epoch: Epoch(1), lsn: LSN(1), payload: []))
            _ = m.beginFlush()
            _ = m.finishFlush(error: "EIO")
            m.addWaiter(for: LSN(1), 1)
        }
    }
}
