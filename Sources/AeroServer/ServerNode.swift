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
// which is journaled) and connects again, until the node stops. A session ended by the
// primary's `mustReseed` re-seeds the running node in place first (ReseedInPlace.swift).
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
            // Epoch 1's durability is fixed now, in its history entry (D1 for this primary).
            options.initialAuthority = .standalonePrimary(config.id, durability: try? NodeRoles.nextDurability(config: config)?.get())
        }
        // The site's policies are checked before anything opens (PolicyStartupCheck.swift).
        let policies = try PolicyStartupCheck.check(config)
        if let policies {
            logger.info("policies loaded", metadata: ["count": "\(policies.count)", "policy_dir": "\(config.policyDir ?? "")",
                                                      "policy_set_digest": "\(policies.setDigest)"])
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
            "policies": policies.map { .object(["count": .integer(Int64($0.count)), "policy_set_digest": .string($0.setDigest)]) } ?? .null,
        ], durability: .sync)
        logger.info("recovered", metadata: ["durable_lsn": "\(engine.durableLSN)", "epoch": "\(authority.epoch)",
                                            "role": "\(authority.role.rawValue)"])

        // The role-dependent parts (peer listener, commit waiters, follow loop) live in NodeRoles,
        // so that a promotion or a re-pointing can switch them while the node runs.
        let roles = NodeRoles(engine: engine, config: config, journal: journal, metrics: metrics, logger: logger)
        var hooks: PrimaryHooks?
        var observer: ReplicationFollower.Observer?
        if config.members.count > 1 {
            if authority.role == .primary {
                do {
                    hooks = try await roles.startPrimary()
                } catch {
                    engine.close()
                    throw error
                }
            } else {
                observer = roles.startFollowing()
            }
        }

        let service = KVService(config: config, engine: engine, journal: journal, metrics: metrics,
                                primaryHooks: hooks, replicaObserver: observer)
        roles.serviceBox.withLockedValue { $0 = service }
        let admin = AdminService(service: service, roles: roles, logger: logger)
        var failure: (any Error)?
        do {
            try await HTTPServer.run(service, admin: admin, logger: logger, onListening: onListening)
        } catch {
            failure = ListenFailure.named(error, node: config.id, listener: "HTTP", address: config.http.description)
        }
        await roles.stopAll()
        engine.close()
        if let failure {
            journal.record("stopped", fields: ["error": .string("\(failure)")], durability: .sync)
            try? journal.close()
            throw failure
        }
        try journal.append("stopped", fields: ["durable_lsn": .integer(Int64(engine.durableLSN.rawValue))], durability: .sync)
        try journal.close()
    }

    /// Connects to the primary, runs a session, and reconnects after it ends, until cancelled.
    static func followLoop(engine: StorageEngine, primary: MemberConfig, group: MultiThreadedEventLoopGroup, config: ServerConfig,
                           observer: ReplicationFollower.Observer, journal: EventJournal, logger: Logger) async {
        // A refusal repeats on every reconnect until an operator acts: journaled once, then
        // every RepeatedEventFilter.journalEvery-th time; forgotten once a session streams.
        var repeats = RepeatedEventFilter()
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
                // The session's appends still queued or pending settle before the loop goes on
                // or ends, so once it ended (stopFollowing) no record of it is appended later.
                await observer.storageSettled(engine: engine)
                switch observer.end {
                case .refusedByPeer(let refuse)?, .refusedPeer(let refuse)?:
                    delayMs = refusedReconnectDelayMs
                    if let occurrence = repeats.occurrence(of: "refused \(refuse.ruleID) \(refuse.message)") {
                        journal.record("replication_refused", fields: ["rule": .string(refuse.ruleID), "message": .string(refuse.message),
                                                                               "primary": .string(primary.id.rawValue),
                                                                               "occurrence": .integer(Int64(occurrence))], durability: .sync)
                    }
                case .mustReseed(let reseed)?:
                    delayMs = refusedReconnectDelayMs
                    if let occurrence = repeats.occurrence(of: "reseed \(reseed.reason)") {
                        journal.record("reseed_required", fields: ["reason": .string(reseed.reason),
                                                                           "checkpoint_lsn": .integer(Int64(reseed.checkpointLSN.rawValue)),
                                                                           "occurrence": .integer(Int64(occurrence))], durability: .sync)
                    }
                    // The session's appends settled above: re-seed in place (ReseedInPlace.swift),
                    // then the next session streams from the checkpoint.
                    // The node's status says `recovering` while it runs (NodeStatus.swift).
                    observer.reseeding(true)
                    let reseeded = await ReseedInPlace.run(engine: engine, config: config, primary: primary,
                                                           reason: "mustReseed from \(primary.id): \(reseed.reason)", journal: journal, logger: logger)
                    observer.reseeding(false, succeeded: reseeded)
                    if reseeded { delayMs = 0 }
                case .connectionClosed?, nil:
                    repeats.reset()
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

    /// The primary's side: `repeats` is shared by all replica sessions (a refused replica
    /// reconnects every 2 s; see RepeatedEventFilter).
    static func journalSessionEnd(_ end: PrimarySessionEnd, journal: EventJournal, repeats: NIOLockedValueBox<RepeatedEventFilter>) {
        switch end {
        case .refusedPeer(let refuse), .refusedByPeer(let refuse):
            guard let occurrence = repeats.withLockedValue({ $0.occurrence(of: "refused \(refuse.ruleID) \(refuse.message)") }) else { return }
            journal.record("replication_refused", fields: ["rule": .string(refuse.ruleID), "message": .string(refuse.message),
                                                                   "occurrence": .integer(Int64(occurrence))], durability: .sync)
        case .mustReseed(let reseed):
            guard let occurrence = repeats.withLockedValue({ $0.occurrence(of: "reseed \(reseed.reason)") }) else { return }
            journal.record("reseed_required", fields: ["reason": .string(reseed.reason), "occurrence": .integer(Int64(occurrence))],
                                    durability: .sync)
        case .connectionClosed:
            // A session ended without a refusal: a refusal after it counts as a first again.
            repeats.withLockedValue { $0.reset() }
        }
    }
}
