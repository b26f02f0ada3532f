// PolicyCLIHarness.swift — runs `aerodb-policy` as a real process from the repository root
// and captures its exit status, stdout and stderr; plus scratch directories for inputs.
import Foundation
import Testing
import AeroTestSupport

/// What one run of the executable produced.
struct ProcessOutcome {
    let status: Int32
    let stdout: String
    let stderr: String

    /// The last non-empty line of stdout.
    var lastLine: String {
        stdout.split(separator: "\n", omittingEmptySubsequences: true).last.map(String.init) ?? ""
    }
}

enum PolicyCLI {
    /// Longest a single run may take; every run here finishes in well under a second.
    static let processTimeoutSeconds = 60

    /// The repository root, found from this file's path (Tests/CLITests/…).
    static let repositoryRoot: URL = Repository.root

    /// Runs `aerodb-policy arguments` in the repository root, feeding `stdin` when given.
    /// Output goes to files (not pipes) so that a large output can never block the child.
    static func run(_ arguments: [String], stdin: String? = nil) throws -> ProcessOutcome {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let outputPath = try scratch.write("stdout", "")
        let errorPath = try scratch.write("stderr", "")
        let inputPath = try scratch.write("stdin", stdin ?? "")
        let process = Process()
        process.executableURL = builtExecutable("aerodb-policy")
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        let output = try #require(FileHandle(forWritingAtPath: outputPath))
        let errors = try #require(FileHandle(forWritingAtPath: errorPath))
        let input = try #require(FileHandle(forReadingAtPath: inputPath))
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
        try process.run()
        // Bounded: a hung child is killed and reported, never waited on forever.
        let finished = ChildProcess.wait(process, timeoutMs: Int(processTimeoutSeconds) * 1000)
        let timedOut = finished == nil
        let exit = finished ?? ChildProcess.waitOrKill(process, timeoutMs: 0)
        #expect(!timedOut, "aerodb-policy \(arguments) did not exit within \(processTimeoutSeconds) s")
        try output.close()
        try errors.close()
        try input.close()
        return ProcessOutcome(
            status: exit.status,
            stdout: try String(contentsOfFile: outputPath, encoding: .utf8),
            stderr: try String(contentsOfFile: errorPath, encoding: .utf8)
        )
    }

    /// The text of a repository file.
    static func read(_ relativePath: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(relativePath), encoding: .utf8)
    }
}

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct ScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("aerodb-cli-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Writes `text` to `name` inside the directory and returns the file's absolute path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Shipped inputs the tests use.
enum Shipped {
    static let failoverFacts = "policies/tests/fixtures/failover-three-nodes.json"
    static let switchoverFacts = "policies/tests/fixtures/switchover-three-nodes.json"
    static let policies = "policies"

    /// The shipped policies' names (`policies/*.lua` less `*.d.lua` definitions), counted from
    /// the directory so that a new policy needs no edit here.
    static func policyNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: PolicyCLI.repositoryRoot.appendingPathComponent(policies).path)
            .filter { $0.hasSuffix(".lua") && !$0.hasSuffix(".d.lua") }.map { String($0.dropLast(".lua".count)) }.sorted()
    }

    /// The failover fixture with one textual replacement (which must occur exactly once).
    static func failoverFacts(replacing target: String, with replacement: String) throws -> String {
        let text = try PolicyCLI.read(failoverFacts)
        let parts = text.components(separatedBy: target)
        try #require(parts.count == 2, "fixture must contain \(target) exactly once")
        return parts.joined(separator: replacement)
    }
}
