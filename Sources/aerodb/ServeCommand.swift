import AeroCore
import AeroServer
import ArgumentParser
import Foundation
import Logging

/// `aerodb serve`: run a node. Today a standalone primary; cluster members follow (issue 5).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a node: the client HTTP API over the data dir (docs/server.md).",
        discussion: """
            aerodb serve --data-dir DIR --http 127.0.0.1:PORT    a standalone primary \
            aerodb serve --config FILE [flags]                   flags override the file \
            Port 0 asks the OS for a free port; the chosen one is printed as \
            "aerodb: node ID listening on http://HOST:PORT" on standard output.
            """
    )

    @Option(name: .long, help: "Node configuration file (JSON).")
    var config: String?

    @Option(name: .long, help: "This node's id (default n1 without a file).")
    var id: String?

    @Option(name: .customLong("data-dir"), help: "Data directory.")
    var dataDir: String?

    @Option(name: .long, help: "Client API address host:port.")
    var http: String?

    @Option(name: .long, help: "Replication address host:port.")
    var peer: String?

    @Option(name: .customLong("commit-mode"), help: "sync or async.")
    var commitMode: String?

    @Option(name: .customLong("sync-replica"), help: "A sync replica's id (repeat for several).")
    var syncReplicas: [String] = []

    @Option(name: .customLong("policy-dir"), help: "Site promotion policies.")
    var policyDir: String?

    func validate() throws {
        if config == nil {
            guard dataDir != nil, http != nil else {
                throw ValidationError("give --config FILE, or --data-dir DIR and --http HOST:PORT for a standalone node")
            }
        }
    }

    func run() async throws {
        let resolved: ServerConfig
        do {
            let base: ServerConfig
            if let config {
                base = try ServerConfig.load(path: config)
            } else {
                // validate() guarantees both; the address is checked by `applying`.
                base = ServerConfig.standalone(id: NodeID(id ?? "n1"), dataDir: dataDir!, http: HostPort(host: "127.0.0.1", port: 0))
            }
            resolved = try base.applying(ServerConfig.Overrides(
                id: id.map { NodeID($0) }, dataDir: dataDir, http: http, peer: peer, commitMode: commitMode,
                syncReplicas: syncReplicas.isEmpty ? nil : syncReplicas, policyDir: policyDir))
        } catch {
            FileHandle.standardError.write(Data("aerodb serve: \(error)\n".utf8))
            throw ExitCode(2)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        var logger = Logger(label: "aerodb")
        logger[metadataKey: "node"] = "\(resolved.id)"
        let id = resolved.id
        let host = resolved.http.host
        do {
            try await ServerNode.run(config: resolved, logger: logger) { port in
                // Unbuffered: a supervisor (or a test) waits for this line.
                FileHandle.standardOutput.write(Data("aerodb: node \(id) listening on http://\(host):\(port)\n".utf8))
            }
        } catch let error as StartupError {
            FileHandle.standardError.write(Data("aerodb serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
