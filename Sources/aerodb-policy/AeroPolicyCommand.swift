// AeroPolicyCommand.swift — `aerodb-policy`: author, dry-run and unit-test site policies
// offline. Exit codes are part of the contract (docs/policy-guide.md, "Exit codes"):
//
//   0  eval: promotion allowed; test/check: everything passed; replay: nothing changed;
//      explore/bench: the result was printed
//   1  eval: promotion refused (any reason, a failing policy included);
//      test: a case failed, no case was found, or coverage is below --coverage-min;
//      check: a policy has a problem; replay: some decision changed
//   2  unusable input: a missing or malformed facts, policy or test file, or bad flags
//
// swift-argument-parser reports usage errors with EX_USAGE (64); `main()` maps them to 2
// so that scripts see one code for every kind of unusable input.
import AeroCore
import ArgumentParser
import Foundation

/// The exit codes of every subcommand.
enum ExitStatus {
    static let success: Int32 = 0
    static let refused: Int32 = 1
    static let unusableInput: Int32 = 2
}

/// An input the command cannot use; the message names the file, field or line.
struct UnusableInput: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

@main
struct AeroPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerodb-policy",
        abstract: "Author, dry-run and unit-test AeroDB promotion policies.",
        discussion: """
            Examples:
              aerodb-policy eval --facts examples/facts/failover-ok.json \\
                  --policy policies --explain
              aerodb-policy test policies/tests --junit /tmp/policy-tests.xml
              aerodb-policy check policies
              aerodb-policy replay --decisions examples/decisions --policy policies
              aerodb-policy explore --facts examples/facts/failover-ok.json \\
                  --policy policies --vary '$.nodes[1].applied_lsn=0..5000:500'
              aerodb-policy bench --facts examples/facts/failover-ok.json \\
                  --policy policies

            Exit codes: 0 allowed / passed, 1 refused / failed, 2 unusable input. \
            The guide: docs/policy-guide.md.
            """,
        version: AeroVersion.string,
        subcommands: [EvalCommand.self, TestCommand.self, CheckCommand.self, ReplayCommand.self, ExploreCommand.self, BenchCommand.self]
    )

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as UnusableInput {
            StandardError.write("aerodb-policy: error: \(error.message)")
            Foundation.exit(ExitStatus.unusableInput)
        } catch {
            if exitCode(for: error) == .validationFailure {
                StandardError.write(fullMessage(for: error))
                Foundation.exit(ExitStatus.unusableInput)
            }
            exit(withError: error)
        }
    }
}
