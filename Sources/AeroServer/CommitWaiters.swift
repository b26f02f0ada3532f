// CommitWaiters.swift — client writes waiting for their commit: CommitQuorum (pure) plus the
// continuations of the requests waiting on it and the clock that expires them.
//
// A write's handler calls `waitCommitted(lsn)` after the local fsync. It resumes exactly once:
// committed (the epoch's quorum of its set acknowledged the LSN durable), timed out (REPL-SYNC-TIMEOUT,
// naming the missing replicas), backlog full (REPL-COMMIT-BACKLOG), or failed (shutdown).
// Expiry runs on a tick of `expiryTickMs` on the monotonic clock; the bound on every wait is
// `timeouts.sync_commit_timeout_ms` plus at most one tick.

import AeroCore
import AeroReplication
import Foundation

public final class CommitWaiters: @unchecked Sendable {
    // @unchecked: `quorum`, `continuations`, `ticker` and `stopped` are guarded by `lock`.

    /// How often deadlines are checked. A wait can overrun its timeout by at most this much.
    public static let expiryTickMs: UInt64 = 5

    public enum Outcome: Equatable, Sendable {
        case committed
        case timedOut(missing: [NodeID])
        case backlogFull(waiters: Int, max: Int)
        case failed
    }

    public let timeoutMs: UInt64
    private let lock = NSLock()
    private var quorum: CommitQuorum
    private var continuations: [CommitQuorum.WaiterID: CheckedContinuation<Outcome, Never>] = [:]
    private var ticker: Task<Void, Never>?
    /// After `stop()` no tick expires a waiter, so a late `waitCommitted` (a commit that read the
    /// hooks before the role stopped) is answered `.failed` at once instead of waiting forever.
    private var stopped = false

    public init(mode: QuorumMode, localDurableLSN: LSN, timeoutMs: UInt64, waitersMax: Int) {
        precondition(timeoutMs > 0, "a commit wait needs a positive timeout")
        self.timeoutMs = timeoutMs
        if case .quorum(let durability) = mode { self.durability = durability } else { self.durability = nil }
        self.quorum = CommitQuorum(mode: mode, localDurableLSN: localDurableLSN, waitersMax: waitersMax)
    }

    /// Starts the expiry tick. `stop()` ends it and fails every waiter.
    public func start() {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Self.expiryTickMs))
                self?.expire(nowMs: Self.monotonicMs())
            }
        }
        lock.withLock { ticker = task }
    }

    public func stop() {
        let (task, failed) = lock.withLock { () -> (Task<Void, Never>?, [CheckedContinuation<Outcome, Never>]) in
            stopped = true
            let ids = quorum.failAll()
            let taken = ids.compactMap { continuations.removeValue(forKey: $0) }
            let task = ticker
            ticker = nil
            return (task, taken)
        }
        task?.cancel()
        for continuation in failed { continuation.resume(returning: .failed) }
    }

    public var committedLSN: LSN { lock.withLock { quorum.committedLSN } }
    /// The epoch's quorum these waiters wait for (nil: async).
    public let durability: EpochDurability?
    public var waiterCount: Int { lock.withLock { quorum.waiterCount } }
    public var waitersMax: Int { lock.withLock { quorum.waitersMax } }
    /// Checked before a write is made, so a write refused for backlog is not written at all.
    public var isFull: Bool { lock.withLock { quorum.waiterCount >= quorum.waitersMax } }

    /// Waits until `lsn` is committed per the mode, or its deadline passes.
    public func waitCommitted(_ lsn: LSN) async -> Outcome {
        await withCheckedContinuation { continuation in
            lock.lock()
            if stopped {
                lock.unlock()
                continuation.resume(returning: .failed)
                return
            }
            switch quorum.enqueue(lsn: lsn, deadlineMs: Self.monotonicMs() + timeoutMs) {
            case .committed:
                lock.unlock()
                continuation.resume(returning: .committed)
            case .backlogFull:
                let waiting = quorum.waiterCount
                lock.unlock()
                continuation.resume(returning: .backlogFull(waiters: waiting, max: quorum.waitersMax))
            case .queued(let id):
                continuations[id] = continuation
                lock.unlock()
            }
        }
    }

    public func localDurable(_ lsn: LSN) {
        resume(lock.withLock { quorum.localDurable(max(lsn, quorum.localDurableLSN)).compactMap { continuations.removeValue(forKey: $0) } })
    }

    public func replicaDurable(_ replica: NodeID, _ lsn: LSN) {
        resume(lock.withLock { quorum.replicaDurable(replica, lsn).compactMap { continuations.removeValue(forKey: $0) } })
    }

    func expire(nowMs: UInt64) {
        let expired = lock.withLock {
            quorum.expire(nowMs: nowMs).compactMap { e in continuations.removeValue(forKey: e.id).map { ($0, e.missing) } }
        }
        for (continuation, missing) in expired { continuation.resume(returning: .timedOut(missing: missing)) }
    }

    private func resume(_ released: [CheckedContinuation<Outcome, Never>]) {
        for continuation in released { continuation.resume(returning: .committed) }
    }

    static func monotonicMs() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }
}
