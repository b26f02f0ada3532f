import AeroCore
import ArgumentParser

@main
struct AeroDBCommand: AsyncParsableCommand {  // async: `serve` runs the server
    static let configuration = CommandConfiguration(
        commandName: "aerodb",
        abstract: "AeroDB: a correctness-first primary–replica replicated key-value database.",
        version: AeroVersion.string,
        subcommands: [KVCommand.self, WALCommand.self, ServeCommand.self,
                      RemoteStatus.self, RemoteGet.self, RemotePut.self, RemoteDelete.self, LocalClusterCommand.self,
                      PromoteCommand.self, DecisionsCommand.self, RejoinCommand.self,
                      ReseedCommand.self, UnfenceCommand.self, ClusterCommand.self]
    )
}
