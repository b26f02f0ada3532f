import AeroCore
import AeroServer
import AeroStorage
import ArgumentParser
import Foundation

/// `aerodb reseed`: replace a stopped node's state by its primary's latest checkpoint.
/// The operator's explicit answer to a diverged node (REPL-DIVERGED): never a silent rewind.
struct ReseedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reseed",
        abstract: "Re-seed a stopped node's data dir from the primary's checkpoint (docs/replication.md#re-seeding).",
        discussion: """
            aerodb reseed --config FILE [--from HOST:PORT] [--discard-local-state] \
            aerodb reseed --data-dir DIR --id ID --from HOST:PORT [--discard-local-state] \
            --from is the primary's HTTP address (with --config: default the member the node \
            follows, else the config's initial_primary). A data dir holding WAL or checkpoints is \
            only discarded with --discard-local-state; the discarded position is journaled in \
            the data dir's events.jsonl. Afterwards `aerodb serve` starts the node as a replica \
            of that primary, streaming from the checkpoint's LSN. Exit 0 re-seeded, 1 refused or \
            failed (the reason on standard error), 2 unusable arguments.
            """
    )

    @Option(name: .long, help: "Node configuration file (JSON).")
    var config: String?

    @Option(name: .customLong("data-dir"), help: "Data directory (overrides the file).")
    var dataDir: String?

    @Option(name: .long, help: "This node's id (overrides the file; default: the data dir's own).")
    var id: String?

    @Option(name: .long, help: "The primary's HTTP address host:port.")
    var from: String?

    @Flag(name: .customLong("discard-local-state"), help: "Confirm that the data dir's WAL and checkpoints are to be discarded.")
    var discardLocalState = false

    func run() async throws {
        var dir = dataDir
        var nodeID = id.map { NodeID($0) }
        var source = from.flatMap { HostPort(parsing: $0) }
        var journalLineBytesMax = 65_536
        if from != nil && source == nil { fail(2, "--from: expected host:port, got \"\(from!)\"") }
        if let config {
            let loaded: ServerConfig
            do { loaded = try ServerConfig.load(path: config) } catch { fail(2, "\(error)") }
            dir = dir ?? loaded.dataDir
            nodeID = nodeID ?? loaded.id
            journalLineBytesMax = Int(loaded.budgets.journalLineBytesMax)
            if source == nil {
                let local = try? ReseedInstall.readAuthority(directory: loaded.dataDir)
                let target = local?.following ?? loaded.initialPrimary
                source = loaded.members.first(where: { $0.id == target && $0.id != loaded.id })?.http
            }
        }
        guard let dir else { fail(2, "give --config FILE or --data-dir DIR") }
        if nodeID == nil { nodeID = (try? ReseedInstall.readAuthority(directory: dir))??.nodeID }
        guard let nodeID else { fail(2, "\(dir) has no authority file: give --id") }
        guard let source else { fail(2, "give --from HOST:PORT (the primary's HTTP address)") }
        do {
            let outcome = try await Reseed.run(dataDir: dir, nodeID: nodeID, source: source, discardLocalState: discardLocalState,
                                               reason: "operator: aerodb reseed", journalLineBytesMax: journalLineBytesMax)
            print("re-seeded \(dir) (node \(nodeID)) from \(outcome.primary) at epoch \(outcome.epoch): checkpoint LSN "
                + "\(outcome.checkpointLSN), \(outcome.entries) keys, \(outcome.bytes) bytes; discarded WAL through LSN "
                + "\(outcome.discardedDurableLSN). Start it with `aerodb serve`: it follows \(outcome.primary).")
        } catch {
            fail(1, "\(error)")
        }
    }

    private func fail(_ code: Int32, _ message: String) -> Never {
        FileHandle.standardError.write(Data("aerodb reseed: \(message)\n".utf8))
        Foundation.exit(code)
    }
}
