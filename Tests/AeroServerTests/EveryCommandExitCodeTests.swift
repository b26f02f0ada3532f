// EveryCommandExitCodeTests.swift — exit codes 0/1/2 across every command of both CLIs (issue 17).
import AeroCore
import AeroTestSupport
import Foundation
import Testing

/// Every subcommand of `aerodb` and `aerodb-policy`, found by walking their `--help` (so a new
/// command is covered without editing this test): an unknown flag exits 2, `--help` exits 0.
@Suite("exit codes of every subcommand of both CLIs")
struct EveryCommandExitCodeTests {
    static func run(_ executable: String, _ arguments: [String]) throws -> ProcessRun {
        try ProcessRun.run(builtExecutable(executable), arguments)
    }

    /// The names listed under SUBCOMMANDS in `executable path… --help` (two-space indent).
    static func subcommands(_ executable: String, _ path: [String]) throws -> [String] {
        let help = try run(executable, path + ["--help"]).stdout
        guard let section = help.range(of: "SUBCOMMANDS:\n") else { return [] }
        return help[section.upperBound...].split(separator: "\n").compactMap { line in
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.dropFirst(2).split(separator: " ").first else { return nil }
            return String(name)
        }.filter { $0 != "help" && $0 != "See" }
    }

    static func leaves(_ executable: String, _ path: [String] = [], depth: Int = 0) throws -> [[String]] {
        precondition(depth <= 3, "command tree deeper than 3: \(path)")
        let children = try subcommands(executable, path)
        if children.isEmpty { return [path] }
        return try children.flatMap { try leaves(executable, path + [$0], depth: depth + 1) }
    }

    @Test("an unknown flag exits 2 and names the flag; --help exits 0", arguments: ["aerodb", "aerodb-policy"])
    func everySubcommand(executable: String) throws {
        let commands = try Self.leaves(executable)
        #expect(commands.count >= (executable == "aerodb" ? 18 : 6), "\(commands)")
        for command in commands {
            let help = try Self.run(executable, command + ["--help"])
            #expect(help.status == 0, "\(executable) \(command) --help: \(help.status)")
            let bogus = try Self.run(executable, command + ["--no-such-flag"])
            #expect(bogus.status == 2, "\(executable) \(command) --no-such-flag: \(bogus.status) \(bogus.stderr)")
            #expect(bogus.stderr.contains("--no-such-flag") || bogus.stderr.contains("Error:"), "\(executable) \(command): \(bogus.stderr)")
        }
    }
}
