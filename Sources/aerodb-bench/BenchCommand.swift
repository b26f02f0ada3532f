import AeroCore
import ArgumentParser

/// Benchmarks. Figures and the commands that produced them go to docs/benchmarks.md.
/// Each subcommand names the peer it is compared with in the same run.
@main
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerodb-bench",
        abstract: "Measure AeroDB and its named peers on this machine.",
        version: AeroVersion.string,
        subcommands: [DecisionsCommand.self, StorageBenchCommand.self, SandboxBenchCommand.self, ServerBenchCommand.self, PromoteBenchCommand.self]
    )
}
