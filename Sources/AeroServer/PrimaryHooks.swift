// PrimaryHooks.swift — the role hooks: what a primary's commit path tells replication and, in
// sync mode, waits for (KVService rule 6). A promotion or re-pointing replaces them as a whole
// (`KVService.installRole`), so the commit path never sees half of one role and half of another.

import AeroCore
import AeroReplication
import AeroStorage

/// What a primary's commit path tells replication, and (sync mode) waits for.
public struct PrimaryHooks: Sendable {
    /// New durable WAL: replicas may be sent more.
    public var walDurable: @Sendable (LSN) -> Void
    /// An LSN acknowledged to a client (carried by heartbeats).
    public var acknowledged: @Sendable (LSN) -> Void
    /// Sync mode: the waiters for the quorum's acknowledgements. nil: async.
    public var waiters: CommitWaiters?
    /// The replicas streaming from this primary now (nil: not known, nothing is refused for it).
    public var streamingReplicas: (@Sendable () -> Set<NodeID>)?
    /// Until this monotonic time (ms) a write whose quorum is not connected waits for it
    /// (`timeouts.quorum_grace_ms` after the role started or a replica session ended).
    public var quorumGraceUntilMs: (@Sendable () -> UInt64)?

    public init(walDurable: @escaping @Sendable (LSN) -> Void, acknowledged: @escaping @Sendable (LSN) -> Void, waiters: CommitWaiters?,
                streamingReplicas: (@Sendable () -> Set<NodeID>)? = nil, quorumGraceUntilMs: (@Sendable () -> UInt64)? = nil) {
        self.walDurable = walDurable
        self.acknowledged = acknowledged
        self.waiters = waiters
        self.streamingReplicas = streamingReplicas
        self.quorumGraceUntilMs = quorumGraceUntilMs
    }


    /// REPL-QUORUM-1 with the grace window: nil when the quorum is connected (at once or within
    /// the window), else the refusal's inputs. Bounded by the window's deadline.
    func quorumUnmetAfterGrace() async -> (EpochDurability, Set<NodeID>)? {
        guard var unmet = quorumUnmet() else { return nil }
        let deadlineMs = quorumGraceUntilMs?() ?? 0
        while CommitWaiters.monotonicMs() < deadlineMs {
            try? await Task.sleep(for: .milliseconds(KVService.quorumPollMs))
            guard let still = quorumUnmet() else { return nil }
            unmet = still
        }
        return unmet
    }

    /// REPL-QUORUM-1's question: fewer members of the set stream from this primary than the
    /// quorum needs? Returns the connected members when so.
    func quorumUnmet() -> (EpochDurability, Set<NodeID>)? {
        guard let durability = waiters?.durability, let streamingReplicas else { return nil }
        let connected = streamingReplicas().intersection(durability.set)
        return connected.count < durability.quorum ? (durability, connected) : nil
    }
}
