// ServerNode.swift — one node's life: open storage and journal, serve, shut down cleanly.
//
// Start: the storage engine recovers the data dir (creating it for a new node with the
// authority of a standalone primary named `config.id`); a data dir whose authority file names
// another node is refused before anything listens. Stop (SIGTERM/SIGINT through
// swift-service-lifecycle): Hummingbird stops accepting, in-flight requests finish — a commit
// in flight is either answered after it is durable or fails explicitly —, then the engine is
// closed and the journal records the stop and is fsync'd.
//
// Not yet here (issue 5 continues): cluster members (peer listener, replica role, sync
// commits through CommitQuorum).

import AeroCore
import AeroStorage
import Foundation
import Logging
import Metrics
import Prometheus

public struct StartupError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public enum ServerNode {
    /// Runs until the process is asked to stop. `onListening` gets the bound HTTP port.
    public static func run(config: ServerConfig, logger: Logger, onListening: @escaping @Sendable (Int) -> Void) async throws {
        guard config.members.count <= 1 else {
            throw StartupError(message: "cluster members are not served yet: this build runs a standalone primary only (issue 5)")
        }
        var options = StorageOptions()
        options.initialAuthority = .standalonePrimary(config.id)
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
        let metrics = ServerMetrics(replicas: config.members.map(\.id).filter { $0 != config.id })
        // Library metrics (swift-metrics) land in the same registry, once per process.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))

        try journal.append("started", fields: [
            "version": .string(AeroVersion.string), "role": .string(authority.role.rawValue),
            "epoch": .integer(Int64(authority.epoch.rawValue)), "durable_lsn": .integer(Int64(engine.durableLSN.rawValue)),
            "http": .string(config.http.description),
        ], durability: .sync)
        logger.info("recovered", metadata: ["durable_lsn": "\(engine.durableLSN)", "epoch": "\(authority.epoch)"])

        let service = KVService(config: config, engine: engine, journal: journal, metrics: metrics)
        do {
            try await HTTPServer.run(service, logger: logger, onListening: onListening)
        } catch {
            engine.close()
            _ = try? journal.append("stopped", fields: ["error": .string("\(error)")], durability: .sync)
            try? journal.close()
            throw error
        }
        engine.close()
        try journal.append("stopped", fields: ["durable_lsn": .integer(Int64(engine.durableLSN.rawValue))], durability: .sync)
        try journal.close()
    }
}
