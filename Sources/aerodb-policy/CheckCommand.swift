// CheckCommand.swift — `aerodb-policy check`: load every policy in the sandbox without
// calling its function; report syntax errors (file:line), a top level that does not return
// a function, and globals the sandbox does not provide.
import AeroPolicy
import ArgumentParser

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check policies without running them: syntax, return value, unknown globals.",
        discussion: """
            Every PATH is a policy file or a directory whose *.lua files (not recursive, sorted) \
            are policies. Each problem is printed as FILE:LINE: MESSAGE.

            Examples:
              aerodb-policy check policies
              aerodb-policy check policies/keep-a-replica.lua policies/change-freeze.lua

            Exit codes: 0 no problem; 1 a problem in some policy; 2 a path that cannot be read.
            """
    )

    @Argument(help: ArgumentHelp("Policy files or directories.", valueName: "path"))
    var paths: [String] = ["policies"]

    func run() throws {
        let sources: [PolicySource]
        do {
            sources = try PolicySet.load(paths: paths)
        } catch {
            throw UnusableInput(message: error.description)
        }
        guard !sources.isEmpty else {
            throw UnusableInput(message: "no policy (*.lua) found in \(paths.joined(separator: ", "))")
        }
        let sandbox = PolicySandbox(budget: PolicySet.budget)
        var problems = 0
        for source in sources {
            let diagnostics = sandbox.check(source)
            if diagnostics.isEmpty {
                print("ok    \(source.path)")
            } else {
                for diagnostic in diagnostics {
                    print("error \(diagnostic.description)")
                }
                problems += diagnostics.count
            }
        }
        print("\(sources.count) policies checked, \(problems) problem\(problems == 1 ? "" : "s")")
        if problems > 0 { throw ExitCode(ExitStatus.refused) }
    }
}
