// AeroDBCommand.swift — `aerodb`: the database's one command line (embedded storage, a node,
// a local cluster, the remote client and the operator's commands).
//
// Exit codes are one convention across every subcommand (docs/operations.md, "Exit codes"),
// the same as `aerodb-policy`'s:
//   0  done (promote: allowed or promoted)
//   1  refused or failed (the node's or the rule's answer is printed)
//   2  unusable request: bad flags or arguments, an unusable address, no answer
// swift-argument-parser reports usage errors with EX_USAGE (64); `main()` maps them to 2.
import AeroCore
import ArgumentParser
import Foundation

@main
struct AeroDBCommand: AsyncParsableCommand {  // async: `serve` runs the server
    static let configuration = CommandConfiguration(
        commandName: "aerodb",
        abstract: "AeroDB: a correctness-first primary–replica replicated key-value database.",
        discussion: "Exit codes: 0 done, 1 refused or failed, 2 unusable request (bad flags, address or no answer).",
        version: AeroVersion.string,
        subcommands: [KVCommand.self, WALCommand.self, ServeCommand.self,
                      RemoteStatus.self, RemoteGet.self, RemotePut.self, RemoteDelete.self, LocalClusterCommand.self,
                      PromoteCommand.self, DecisionsCommand.self, RejoinCommand.self,
                      ReseedCommand.self, UnfenceCommand.self, ClusterCommand.self]
    )

    static func main() async {
        do {
            var command = try parseAsRoot(Array(CommandLine.arguments.dropFirst()))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
