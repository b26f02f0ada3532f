// ServerNode.swift — one node's life: open storage and journal, serve, shut down cleanly.
//
// Start: the storage engine recovers the data dir. A new data dir gets the authority of a
// standalone primary (no members), or, in a cluster, that of the primary of epoch 1 (this node
// is `initial_primary`) or of a fresh replica following it. A data dir whose authority file
// names another node is refused before anything listens. From then on the authority file alone
// says whether this node is the primary or a replica, and whom it follows.
//
// Primary in a cluster: the peer listener (ReplicationSource) streams the WAL to replicas; in
// sync mode each write waits in CommitWaiters for every sync replica's durable acknowledgement.
// Replica: a follow loop connects to the primary's peer address, runs one session, and after
// the session ends waits `reconnectDelayMs` (or `refusedReconnectDelayMs` after a refusal,
// which is journaled) and connects again, until the node stops.
//
// Stop (SIGTERM/SIGINT through swift-service-lifecycle): Hummingbird stops accepting,
// in-flight requests finish — a commit in flight is either answered after it is durable (and,
// in sync mode, replicated) or fails explicitly —, then replication stops, the engine is closed,
// and the journal records the stop and is fsync'd.

import AeroCore
import AeroReplication
import AeroStorage
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOPosix
import Prometheus

public struct StartupError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public enum ServerNode {
    /// A replica waits this long before reconnecting after a lost connection.
    public static let reconnectDelayMs: UInt64 = 200
    /// And this long after a refusal (the cause needs an operator; retrying fast helps nobody).
    public static let refusedReconnectDelayMs: UInt64 = 2_000

    /// Runs until the process is asked to stop. `onListening` gets the bound HTTP port.
    public static func run(config: ServerConfig, logger: Logger, onListening: @escaping @Sendable (Int) -> Void) async throws {
        var options = StorageOptions()
        if config.members.count > 1, let initial = config.initialPrimary, initial != config.id {
            options.initialAuthority = .newReplica(config.id, following: initial)
        } else {
            options.initialAuthority = .standalonePrimary(config.id)
        }
        // A replica whose primary no longer holds the WAL it needs is re-seeded first (ReseedStartup.swift).
        try await ReseedStartup.prepare(config: config, logger: logger)
        let engine: StorageEngine
        do {
            engine = try StorageEngine.open(directory: config.dataDir, options: options)
        } catch {
            throw StartupError(message: "cannot open data dir \(config.dataDir): \(error)")
        }
        let authority = engine.authority
        guard authority.nodeID == config.id else {
            engine.close()
            throw StartupError(message: "data dir \(config.dataDir) belongs to node \(authority.nodeID), not \(config.id)")
        }
        let journal: EventJournal
        do {
            journal = try EventJournal(directory: config.dataDir, node: config.id, lineBytesMax: Int(config.budgets.journalLineBytesMax))
        } catch {
            engine.close()
            throw StartupError(message: "\(error)")
        }
        let replicas = config.members.map(\.id).filter { $0 != config.id }
        let metrics = ServerMetrics(replicas: replicas)
        // Library metrics (swift-metrics) land in the same registry, once per process.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))

        try journal.append("started", fields: [
            "version": .string(AeroVersion.string), "role": .string(authority.role.rawValue),
            "epoch": .integer(Int64(authority.epoch.rawValue)), "durable_lsn": .integer(Int64(engine.durableLSN.rawValue)),
            "http": .string(config.http.description),
        ], durability: .sync)
        logger.info("recovered", metadata: ["durable_lsn": "\(engine.durableLSN)", "epoch": "\(authority.epoch)",
                                            "role": "\(authority.role.rawValue)"])

        let group = MultiThreadedEventLoopGroup.singleton
        var source: ReplicationSource?
        var waiters: CommitWaiters?
        var observer: ReplicationFollower.Observer?
        var followTask: Task<Void, Never>?
        var hooks: PrimaryHooks?
        // The service exists only after replication is set up; callbacks reach it through this.
        let serviceBox = NIOLockedValueBox<KVService?>(nil)

        if config.members.count > 1 {
            if authority.role == .primary {
                // The cluster's sync replicas, less this node: a primary is not its own replica.
                let syncSet = Set(config.syncReplicas).subtracting([config.id])
                if config.commitMode == .sync && syncSet.isEmpty {
                    engine.close()
                    throw StartupError(message: "commit_mode sync, but sync_replicas names no member other than this primary \(config.id)")
                }
                let syncWaiters: CommitWaiters? = config.commitMode == .sync
                    ? CommitWaiters(mode: .sync(replicas: syncSet), localDurableLSN: engine.durableLSN,
                                    timeoutMs: config.timeouts.syncCommitTimeoutMs, waitersMax: Int(config.budgets.commitWaitersMax))
                    : nil
                syncWaiters?.start()
                waiters = syncWaiters
                let lagClock = LagClock()
                let replicationSource = ReplicationSource(
                    engine: engine, nodeID: config.id, members: Set(config.members.map(\.id)), group: group,
                    heartbeatIntervalMs: Int64(config.timeouts.heartbeatIntervalMs),
                    inFlightLSNMax: config.budgets.replicationInFlightLSNMax,
                    callbacks: .init(
                        replicaProgress: { replica, durable, applied in
                            syncWaiters?.replicaDurable(replica, durable)
                            let primaryDurable = engine.durableLSN.rawValue
                            metrics.replicaLag(replica, lsns: primaryDurable > applied.rawValue ? primaryDurable - applied.rawValue : 0,
                                               seconds: lagClock.lagSeconds(applied: applied, nowMs: CommitWaiters.monotonicMs()))
                        },
                        higherEpochSeen: { epoch, replica in
                            logger.error("a peer is at a higher epoch; this primary stops accepting writes",
                                         metadata: ["epoch": "\(epoch)", "peer": "\(replica)"])
                            _ = try? journal.appendRefusal(.staleEpoch(node: config.id, nodeEpoch: engine.currentEpoch, seenEpoch: epoch, seenFrom: replica.rawValue))
                            let service = serviceBox.withLockedValue { $0 }
                            Task { await service?.learnedHigherEpoch(epoch, from: replica.rawValue) }
                        },
                        sessionEnded: { end in journalSessionEnd(end, journal: journal) }))
                guard let peer = config.peer else { throw StartupError(message: "a cluster primary needs a peer address") }
                let port = try await replicationSource.start(host: peer.host, port: peer.port)
                logger.info("peer listener", metadata: ["port": "\(port)"])
                source = replicationSource
                hooks = PrimaryHooks(
                    walDurable: { lsn in
                        lagClock.durable(lsn, atMs: CommitWaiters.monotonicMs())
                        replicationSource.walDurable(lsn)
                    },
                    acknowledged: { replicationSource.acknowledged(through: $0) },
                    waiters: syncWaiters)
            } else if let following = authority.following, let primary = config.members.first(where: { $0.id == following }) {
                let followObserver = ReplicationFollower.Observer()
                observer = followObserver
                followTask = Task {
                    await followLoop(engine: engine, primary: primary, group: group, config: config, observer: followObserver,
                                     journal: journal, logger: logger)
                }
            } else {
                logger.error("replica without a configured primary to follow", metadata: ["following": "\(authority.following.map(\.rawValue) ?? "none")"])
            }
        }

        let service = KVService(config: config, engine: engine, journal: journal, metrics: metrics,
                                primaryHooks: hooks, replicaObserver: observer)
        serviceBox.withLockedValue { $0 = service }
        var failure: (any Error)?
        do {
            try await HTTPServer.run(service, logger: logger, onListening: onListening)
        } catch {
            failure = error
        }
        followTask?.cancel()
        await followTask?.value
        await source?.stop()
        waiters?.stop()
        engine.close()
        if let failure {
            _ = try? journal.append("stopped", fields: ["error": .string("\(failure)")], durability: .sync)
            try? journal.close()
            throw failure
        }
        try journal.append("stopped", fields: ["durable_lsn": .integer(Int64(engine.durableLSN.rawValue))], durability: .sync)
        try journal.close()
    }

    /// Connects to the primary, runs a session, and reconnects after it ends, until cancelled.
    static func followLoop(engine: StorageEngine, primary: MemberConfig, group: MultiThreadedEventLoopGroup, config: ServerConfig,
                           observer: ReplicationFollower.Observer, journal: EventJournal, logger: Logger) async {
        while !Task.isCancelled {
            observer.beginSession()
            var delayMs = reconnectDelayMs
            do {
                let channel = try await ReplicationFollower.connect(
                    engine: engine, expectedPrimary: primary.id, host: primary.peer.host, port: primary.peer.port,
                    group: group, observer: observer, connectTimeoutMs: Int64(config.timeouts.peerConnectTimeoutMs))
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()
                } onCancel: {
                    channel.close(promise: nil)
                }
                switch observer.end {
                case .refusedByPeer(let refuse)?, .refusedPeer(let refuse)?:
                    delayMs = refusedReconnectDelayMs
                    _ = try? journal.append("replication_refused", fields: ["rule": .string(refuse.ruleID), "message": .string(refuse.message),
                                                                           "primary": .string(primary.id.rawValue)], durability: .sync)
                case .mustReseed(let reseed)?:
                    delayMs = refusedReconnectDelayMs
                    _ = try? journal.append("reseed_required", fields: ["reason": .string(reseed.reason),
                                                                       "checkpoint_lsn": .integer(Int64(reseed.checkpointLSN.rawValue))], durability: .sync)
                case .follow?, .connectionClosed?, nil:
                    break
                }
                if let storageError = observer.storageError {
                    logger.error("replicated append refused by storage", metadata: ["error": "\(storageError)"])
                    delayMs = refusedReconnectDelayMs
                }
            } catch {
                logger.debug("cannot reach the primary", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(delayMs))
        }
    }

    static func journalSessionEnd(_ end: PrimarySessionEnd, journal: EventJournal) {
        switch end {
        case .refusedPeer(let refuse), .refusedByPeer(let refuse):
            _ = try? journal.append("replication_refused", fields: ["rule": .string(refuse.ruleID), "message": .string(refuse.message)], durability: .sync)
        case .mustReseed(let reseed):
            _ = try? journal.append("reseed_required", fields: ["reason": .string(reseed.reason)], durability: .sync)
        case .connectionClosed:
            break
        }
    }
}
