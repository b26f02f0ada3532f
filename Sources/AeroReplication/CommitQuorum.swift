// CommitQuorum.swift — when a write may be acknowledged to its client, as a pure state machine.
//
// Terms
//   commit mode     `async`: a write is committed once durable on the primary.
//                   `quorum(d)`: once durable on the primary AND on `d.quorum` members of the
//                   epoch's acknowledging set `d.set` (EpochDurability: ANY k of the set;
//                   k = |set| is "all of them").
//   committed LSN   the highest LSN that is committed: min(local durable, the k-th highest
//                   durable position among the set). Writes are acknowledged in LSN order up
//                   to it.
//   waiter          a client write waiting for its LSN to be committed, with a deadline on the
//                   caller's monotonic clock (milliseconds; time comes in as an argument so the
//                   machine runs under a deterministic harness).
//
// States: the positions (local durable, each sync replica's durable) and the waiter queue.
// Transitions: `localDurable`, `replicaDurable` (positions), `enqueue` (a waiter),
// `expire(nowMs:)` (deadlines), `failAll()` (all waiters, e.g. on fencing or shutdown).
//
// Invariants (checked by `checkInvariants()` after every transition)
// 1. Positions never decrease (a durable LSN stays durable; `replicaDurable` keeps the max, so a
//    reconnecting replica's first ack cannot move the quorum back).
// 2. A waiter is released only when its LSN <= committed LSN; none is released twice; every
//    waiter leaves the queue exactly once: released, expired or failed.
// 3. The queue holds at most `waitersMax` waiters; `enqueue` beyond it answers `.backlogFull`
//    (the caller refuses the write with REPL-COMMIT-BACKLOG) and never grows the queue.
// 4. Waiters are kept in LSN order, so releasing is a prefix of the queue.

import AeroCore

public enum QuorumMode: Hashable, Sendable {
    case async
    /// `quorum` members of the set must be durable (EpochDurability keeps 1 <= k <= |set|).
    case quorum(EpochDurability)

    /// Every named replica must be durable ("all of them").
    public static func sync(replicas: Set<NodeID>) -> QuorumMode {
        .quorum(EpochDurability(quorum: replicas.count, set: Array(replicas)))
    }
}

public struct CommitQuorum: Sendable {
    /// Client writes waiting for their commit at once. A bound on memory and on the time a
    /// burst can take to drain; beyond it writes are refused rather than queued.
    public static let waitersMaxDefault = 65_536

    public struct WaiterID: Hashable, Sendable, Comparable {
        public let rawValue: UInt64
        public static func < (a: WaiterID, b: WaiterID) -> Bool { a.rawValue < b.rawValue }
    }

    struct Waiter: Sendable {
        var id: WaiterID
        var lsn: LSN
        var deadlineMs: UInt64
    }

    public let mode: QuorumMode
    public let waitersMax: Int
    public private(set) var localDurableLSN: LSN
    public private(set) var replicaDurableLSN: [NodeID: LSN]
    private var waiters: [Waiter] = []
    private var nextWaiter: UInt64 = 1

    public init(mode: QuorumMode, localDurableLSN: LSN, waitersMax: Int = CommitQuorum.waitersMaxDefault) {
        precondition(waitersMax >= 1, "waitersMax must be positive")
        self.mode = mode
        self.waitersMax = waitersMax
        self.localDurableLSN = localDurableLSN
        // Until a replica acknowledges, nothing is known durable there.
        var positions: [NodeID: LSN] = [:]
        if case .quorum(let durability) = mode { for id in durability.set { positions[id] = .zero } }
        self.replicaDurableLSN = positions
    }

    public var waiterCount: Int { waiters.count }

    /// The highest committed LSN.
    public var committedLSN: LSN {
        switch mode {
        case .async: return localDurableLSN
        case .quorum(let durability):
            // The k-th highest position: k members hold everything up to it.
            let positions = replicaDurableLSN.values.sorted(by: >)
            return min(localDurableLSN, positions[durability.quorum - 1])
        }
    }

    /// The members of the set that do not yet have `lsn` durably (empty in async mode).
    public func missingReplicas(for lsn: LSN) -> [NodeID] {
        replicaDurableLSN.filter { $0.value < lsn }.map(\.key).sorted()
    }

    /// The quorum, or nil in async mode.
    public var durability: EpochDurability? {
        if case .quorum(let durability) = mode { return durability }
        return nil
    }

    public enum Enqueued: Hashable, Sendable {
        /// Already committed: acknowledge the client now.
        case committed
        /// Wait for `id` to be released (or expired, or failed).
        case queued(WaiterID)
        /// The queue is full (invariant 3): refuse the write with REPL-COMMIT-BACKLOG.
        case backlogFull
    }

    /// Registers a write at `lsn` that must be acknowledged by `deadlineMs`.
    public mutating func enqueue(lsn: LSN, deadlineMs: UInt64) -> Enqueued {
        precondition(lsn > .zero, "a write has an LSN")
        if lsn <= committedLSN { return .committed }
        guard waiters.count < waitersMax else { return .backlogFull }
        let id = WaiterID(rawValue: nextWaiter)
        nextWaiter += 1
        let waiter = Waiter(id: id, lsn: lsn, deadlineMs: deadlineMs)
        // Writes arrive almost always in LSN order; insert keeps the queue sorted otherwise.
        if let last = waiters.last, last.lsn > lsn {
            let index = waiters.firstIndex(where: { $0.lsn > lsn })!
            waiters.insert(waiter, at: index)
        } else {
            waiters.append(waiter)
        }
        checkInvariants()
        return .queued(id)
    }

    /// The primary's WAL is durable through `lsn`. Returns the released waiters.
    public mutating func localDurable(_ lsn: LSN) -> [WaiterID] {
        precondition(lsn >= localDurableLSN, "local durable LSN went back from \(localDurableLSN) to \(lsn)")
        localDurableLSN = lsn
        return release()
    }

    /// A replica acknowledged durable `lsn`. Acks of replicas that are not sync replicas change
    /// nothing here (they only feed lag metrics).
    public mutating func replicaDurable(_ replica: NodeID, _ lsn: LSN) -> [WaiterID] {
        guard let previous = replicaDurableLSN[replica] else { return [] }
        replicaDurableLSN[replica] = max(previous, lsn)
        return release()
    }

    /// Waiters whose deadline is at or before `nowMs`, removed from the queue, with the sync
    /// replicas each was missing (for the REPL-SYNC-TIMEOUT explanation).
    public mutating func expire(nowMs: UInt64) -> [(id: WaiterID, lsn: LSN, missing: [NodeID])] {
        let due = waiters.filter { $0.deadlineMs <= nowMs }
        guard !due.isEmpty else { return [] }
        waiters.removeAll { $0.deadlineMs <= nowMs }
        let expired = due.map { (id: $0.id, lsn: $0.lsn, missing: missingReplicas(for: $0.lsn)) }
        checkInvariants()
        return expired
    }

    /// Removes every waiter (fencing, shutdown): the caller fails each write explicitly.
    public mutating func failAll() -> [WaiterID] {
        let all = waiters.map(\.id)
        waiters.removeAll()
        return all
    }

    /// The earliest deadline, for the caller's timer.
    public var nextDeadlineMs: UInt64? { waiters.map(\.deadlineMs).min() }

    private mutating func release() -> [WaiterID] {
        let committed = committedLSN
        let count = waiters.prefix(while: { $0.lsn <= committed }).count
        let released = waiters.prefix(count).map(\.id)
        waiters.removeFirst(count)
        checkInvariants()
        return released
    }

    func checkInvariants() {
        precondition(waiters.count <= waitersMax, "invariant 3: \(waiters.count) waiters")
        for (a, b) in zip(waiters, waiters.dropFirst()) {
            precondition(a.lsn <= b.lsn, "invariant 4: waiters out of LSN order")
        }
        if let first = waiters.first {
            precondition(first.lsn > committedLSN, "invariant 2: waiter \(first.lsn) committed but queued")
        }
    }
}
