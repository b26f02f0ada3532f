import AeroCore
import ArgumentParser

@main
struct AeroDBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerodb",
        abstract: "AeroDB: a correctness-first primary–replica replicated key-value database.",
        version: AeroVersion.string,
        subcommands: [KVCommand.self, WALCommand.self]
    )
}
