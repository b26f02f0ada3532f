import AeroTestSupport
import Foundation
import Testing

/// How the tests are laid out: a suite lives in a file of its own name, helpers that several
/// targets need come from AeroTestSupport only, and bounded waits run on the monotonic clock.
@Suite struct TestLayoutTidyTests {
    /// Files that hold more than one suite: none (each suite lives in a file of its own name).
    static let multiSuiteFiles: Set<String> = []

    static func testFiles() throws -> [String] {
        try Repository.files(under: "Tests", suffixes: [".swift"])
    }

    /// The type declared right after each `@Suite` attribute.
    static func suites(in text: String) -> [String] {
        Tidy.matches(#"@Suite(?:\([^\n]*\))?\s*(?:final\s+)?(?:struct|class|enum|actor)\s+(\w+)"#, in: text).map { $0[1] }
    }

    @Test func everySuiteLivesInAFileOfItsOwnName() throws {
        var suites = 0
        for path in try Self.testFiles() where !Self.multiSuiteFiles.contains(path) {
            let file = String(path.split(separator: "/").last!.dropLast(".swift".count))
            for suite in Self.suites(in: try Repository.text(path)) {
                suites += 1
                #expect(suite == file, "\(path) holds suite \(suite); move it to \(suite).swift")
            }
        }
        #expect(suites >= 80, "found only \(suites) suites: is the parser broken?")
        for path in Self.multiSuiteFiles {
            #expect(FileManager.default.fileExists(atPath: Repository.url(path).path), "\(path) is allow-listed but gone: remove its entry")
        }
    }

    /// Finding the repository and the built executables is AeroTestSupport's (Repository.swift).
    @Test func sharedHelpersComeFromAeroTestSupport() throws {
        // TidyTests is left out: its sources spell the patterns they look for.
        for path in try Self.testFiles() where !path.hasPrefix("Tests/AeroTestSupport/") && !path.hasPrefix("Tests/TidyTests/") {
            let text = try Repository.text(path)
            for helper in ["func builtExecutable(", "func productExecutable(", "Bundle.allBundles"] {
                #expect(!text.contains(helper), "\(path) defines \(helper)…: use AeroTestSupport's")
            }
            #expect(!text.contains("#filePath).deletingLastPathComponent().deletingLastPathComponent()")
                    && !text.contains("#filePath)\n        .deletingLastPathComponent()"),
                    "\(path) finds the repository root itself: use Repository.root")
        }
    }

    /// A bounded wait is a deadline on `ContinuousClock` (`Deadline.waitUntil`), not a count of
    /// polls around a sleep and not `Date()`, which can jump.
    @Test func boundedWaitsUseMonotonicDeadlines() throws {
        for path in try Self.testFiles() where path != "Tests/AeroTestSupport/Deadline.swift" && !path.hasPrefix("Tests/TidyTests/") {
            let lines = try Repository.text(path).split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                if line.contains("Date().addingTimeInterval") || line.contains("Date() <") || line.contains("timeIntervalSince(") {
                    Issue.record("\(path):\(index + 1) measures a wait with Date(): use ContinuousClock (Deadline)")
                }
                // A loop (`for _ in 0..<N` or `while ... polls`) whose body sleeps is a count of polls.
                guard line.contains("for _ in 0..<") || line.contains("for attempt in 0..<") || (line.contains("while ") && line.contains("polls")) else { continue }
                let body = lines[index..<min(lines.count, index + 4)].joined(separator: "\n")
                if body.contains("Task.sleep") || body.contains("usleep") || body.contains("Thread.sleep") {
                    Issue.record("\(path):\(index + 1) bounds a wait by a count of polls: use Deadline.waitUntil(timeoutMs:)")
                }
            }
        }
    }
}
