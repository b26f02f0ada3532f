import AeroCore
import AeroReplication
import AeroServer
import AeroTestSupport
import Foundation
import Testing

/// A write that reaches `waitCommitted` after the primary role stopped its waiters (a demotion
/// or shutdown racing the commit path, which read the hooks just before) fails at once: the
/// expiry tick is gone, so a queued waiter would never be answered.
@Suite("Commit waiters after stop")
struct CommitWaitersAfterStopTests {
    /// Bound on how long the test waits for an answer that, when correct, is immediate.
    static let answerWaitMsMax = 10_000

    @Test("waitCommitted after stop answers failed instead of waiting forever")
    func waitAfterStopFails() async throws {
        let waiters = CommitWaiters(mode: .sync(replicas: ["n2"]), localDurableLSN: .zero, timeoutMs: 50, waitersMax: 8)
        waiters.start()
        waiters.stop()
        waiters.localDurable(LSN(1))
        let answer = Answer()
        Task { answer.set(await waiters.waitCommitted(LSN(1))) }
        _ = await Deadline.waitUntil(timeoutMs: Self.answerWaitMsMax) { answer.get() != nil }
        #expect(answer.get() == .failed)
        #expect(waiters.waiterCount == 0)
    }
}

/// The outcome, once the waiting task has it.
private final class Answer: @unchecked Sendable {
    // @unchecked: `outcome` is guarded by `lock`.
    private let lock = NSLock()
    private var outcome: CommitWaiters.Outcome?
    func set(_ value: CommitWaiters.Outcome) { lock.withLock { outcome = value } }
    func get() -> CommitWaiters.Outcome? { lock.withLock { outcome } }
}
