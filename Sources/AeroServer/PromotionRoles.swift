// PromotionRoles.swift — the parts of a running node that depend on its role, started and
// stopped while the process runs, so that a promotion or a re-pointing changes the role live.
//
// A primary in a cluster runs a peer listener (ReplicationSource) and, in sync mode, the commit
// waiters; a replica runs one follow loop. ServerNode starts the role the authority file names;
// the promotion coordinator (PromotionCoordinator.swift) and the admin handlers
// (AdminService.swift) switch it after the authority file changed, never before:
//   1. `startPrimary` is called only when the authority file says primary (checked here).
//   2. `startFollowing` is called only when the authority file says replica (checked here).
//   3. At most one of the two runs at a time; switching stops the other first.
// What a primary waits for in sync mode is its epoch's durability (EpochDurability.swift): the
// quorum and acknowledging set recorded in the epoch's history entry when the epoch began.
// An entry written before durability was recorded gets what D1 derives from the
// configuration for the epoch's primary. Never "every member" as a fallback: a configuration
// that leaves the primary no member to acknowledge is a start error.

import AeroCore
import AeroReplication
import AeroStorage
import Logging
import NIOConcurrencyHelpers
import NIOPosix

public final class NodeRoles: Sendable {
    struct Running {
        var source: ReplicationSource?
        var waiters: CommitWaiters?
        var followTask: Task<Void, Never>?
        var observer: ReplicationFollower.Observer?
    }

    let engine: StorageEngine
    let config: ServerConfig
    let journal: EventJournal
    let metrics: ServerMetrics
    let logger: Logger
    /// The service exists only after the first role started; callbacks reach it through this.
    let serviceBox = NIOLockedValueBox<KVService?>(nil)
    private let running = NIOLockedValueBox(Running())

    init(engine: StorageEngine, config: ServerConfig, journal: EventJournal, metrics: ServerMetrics, logger: Logger) {
        self.engine = engine
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.logger = logger
    }

    var observer: ReplicationFollower.Observer? { running.withLockedValue { $0.observer } }
    var isPrimaryRunning: Bool { running.withLockedValue { $0.source != nil } }

    /// The durability of the epoch `authority` is in (see the design notes); nil: async.
    public static func durability(config: ServerConfig, authority: Authority) -> Result<EpochDurability, DurabilityProblem>? {
        if let recorded = authority.history.last?.durability { return .success(recorded) }
        guard config.commitMode == .sync, config.members.count > 1 else { return nil }
        let primary = authority.history.last?.primary ?? config.id
        return EpochDurability.derive(eligible: config.syncReplicas, quorum: config.syncQuorum, primary: primary)
    }

    /// The durability a new epoch with this node as primary gets (D1); nil: async.
    static func nextDurability(config: ServerConfig) -> Result<EpochDurability, DurabilityProblem>? {
        guard config.commitMode == .sync, config.members.count > 1 else { return nil }
        return EpochDurability.derive(eligible: config.syncReplicas, quorum: config.syncQuorum, primary: config.id)
    }

    /// Starts the peer listener and commit waiters; returns the hooks the commit path uses.
    func startPrimary() async throws -> PrimaryHooks {
        let authority = engine.authority
        precondition(authority.role == .primary, "startPrimary on a \(authority.role.rawValue)")
        precondition(!isPrimaryRunning && observer == nil, "a role is already running")
        let durability: EpochDurability?
        switch Self.durability(config: config, authority: authority) {
        case nil: durability = nil
        case .success(let value)?: durability = value
        case .failure(let problem)?: throw StartupError(message: "commit_mode sync, but \(problem)")
        }
        guard let peer = config.peer else { throw StartupError(message: "a cluster primary needs a peer address") }
        let engine = engine, metrics = metrics, journal = journal, logger = logger, config = config, serviceBox = serviceBox
        let syncWaiters: CommitWaiters? = durability.map {
            CommitWaiters(mode: .quorum($0), localDurableLSN: engine.durableLSN,
                          timeoutMs: config.timeouts.syncCommitTimeoutMs, waitersMax: Int(config.budgets.commitWaitersMax))
        }
        syncWaiters?.start()
        let lagClock = LagClock()
        // What each replica last reported, read by /metrics at scrape time (ServerMetrics+Node).
        let progress = NIOLockedValueBox([NodeID: ReplicaProgress]())
        let sessionEndRepeats = NIOLockedValueBox(RepeatedEventFilter())
        // REPL-QUORUM-1's grace window: open at the start and after every session end.
        let graceMs = config.timeouts.quorumGraceMs
        let graceUntilMs = NIOLockedValueBox(CommitWaiters.monotonicMs() + graceMs)
        let source = ReplicationSource(
            engine: engine, nodeID: config.id, members: Set(config.members.map(\.id)), group: MultiThreadedEventLoopGroup.singleton,
            heartbeatIntervalMs: Int64(config.timeouts.heartbeatIntervalMs),
            inFlightLSNMax: config.budgets.replicationInFlightLSNMax,
            callbacks: .init(
                replicaProgress: { replica, durable, applied in
                    syncWaiters?.replicaDurable(replica, durable)
                    let nowMs = CommitWaiters.monotonicMs()
                    progress.withLockedValue { $0[replica] = ReplicaProgress(applied: applied, contactMs: nowMs) }
                    let primaryDurable = engine.durableLSN.rawValue
                    metrics.replicaLag(replica, lsns: primaryDurable > applied.rawValue ? primaryDurable - applied.rawValue : 0,
                                       seconds: lagClock.lagSeconds(applied: applied, nowMs: CommitWaiters.monotonicMs()))
                },
                higherEpochSeen: { epoch, replica in
                    logger.error("a peer is at a higher epoch; this primary stops accepting writes",
                                 metadata: ["epoch": "\(epoch)", "peer": "\(replica)"])
                    journal.recordRefusal(.staleEpoch(node: config.id, nodeEpoch: engine.currentEpoch, seenEpoch: epoch, seenFrom: replica.rawValue))
                    let service = serviceBox.withLockedValue { $0 }
                    Task { await service?.learnedHigherEpoch(epoch, from: replica.rawValue) }
                },
                sessionEnded: { end in
                    graceUntilMs.withLockedValue { $0 = CommitWaiters.monotonicMs() + graceMs }
                    ServerNode.journalSessionEnd(end, journal: journal, repeats: sessionEndRepeats)
                }))
        let port: Int
        do {
            port = try await source.start(host: peer.host, port: peer.port)
        } catch {
            syncWaiters?.stop()
            throw ListenFailure.named(error, node: config.id, listener: "the peer protocol", address: "\(peer.host):\(peer.port)")
        }
        metrics.lagSource = ReplicaLagSource(
            progress: { progress.withLockedValue { $0 } },
            lagSeconds: { applied, nowMs in lagClock.lagSeconds(applied: applied, nowMs: nowMs) })
        logger.info("peer listener", metadata: ["port": "\(port)", "durability": "\(durability.map(\.description) ?? "async")"])
        running.withLockedValue {
            $0.source = source
            $0.waiters = syncWaiters
        }
        return PrimaryHooks(
            walDurable: { lsn in
                lagClock.durable(lsn, atMs: CommitWaiters.monotonicMs())
                source.walDurable(lsn)
            },
            acknowledged: { source.acknowledged(through: $0) },
            waiters: syncWaiters,
            streamingReplicas: { source.streamingReplicas },
            quorumGraceUntilMs: { graceUntilMs.withLockedValue { $0 } })
    }

    /// Starts the follow loop towards the primary the authority file names, if it is a member.
    @discardableResult
    func startFollowing() -> ReplicationFollower.Observer? {
        let authority = engine.authority
        precondition(authority.role == .replica, "startFollowing on a \(authority.role.rawValue)")
        guard let following = authority.following, let primary = config.members.first(where: { $0.id == following }) else {
            logger.error("replica without a configured primary to follow", metadata: ["following": "\(authority.following.map(\.rawValue) ?? "none")"])
            return nil
        }
        let observer = ReplicationFollower.Observer()
        let engine = engine, config = config, journal = journal, logger = logger
        let task = Task {
            await ServerNode.followLoop(engine: engine, primary: primary, group: MultiThreadedEventLoopGroup.singleton, config: config,
                                        observer: observer, journal: journal, logger: logger)
        }
        running.withLockedValue {
            precondition($0.source == nil && $0.followTask == nil, "a role is already running")
            $0.followTask = task
            $0.observer = observer
        }
        return observer
    }

    /// Stops the follow loop (if any) and waits until its session is closed: no record of the
    /// old primary is appended after this returns.
    func stopFollowing() async {
        let task = running.withLockedValue { state -> Task<Void, Never>? in
            let task = state.followTask
            state.followTask = nil
            state.observer = nil
            return task
        }
        task?.cancel()
        await task?.value
    }

    /// Stops the peer listener and the commit waiters (waiting writes fail, none is acknowledged).
    func stopPrimary() async {
        let (source, waiters) = running.withLockedValue { state -> (ReplicationSource?, CommitWaiters?) in
            defer { state.source = nil; state.waiters = nil }
            return (state.source, state.waiters)
        }
        metrics.lagSource = nil
        await source?.stop()
        waiters?.stop()
    }

    func stopAll() async {
        await stopFollowing()
        await stopPrimary()
    }
}
