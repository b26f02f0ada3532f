import AeroCore
import ArgumentParser

@main
struct AeroPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerodb-policy",
        abstract: "Author, dry-run and unit-test AeroDB promotion policies.",
        version: AeroVersion.string,
        subcommands: []
    )
}
