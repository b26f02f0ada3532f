// DocExamplesTests.swift — what the README and `--help` tell a user to paste works when pasted
// (issue 17). Both tests use the addresses the docs use (127.0.0.1:7001–7003, 7101–7103), so
// they share one serialized suite.
//
// The README's tour: its ```sh block is
// run line by line by bash from the repository root, as a user would paste it, and every line
// must exit 0, or the code its comment states (`# exit 1: …`). Two substitutions only: `swift
// build` is skipped (this test runs inside a build) and `B=` points at this build's products.
// The tour uses its own fixed addresses (127.0.0.1:7001–7003, 7010, 7101–7103) and
// /tmp/aerodb-tour, as written; a port taken by another process fails the test with
// local-cluster's message naming it.
import AeroTestSupport
import Foundation
import Testing

@Suite("README and --help examples, run as pasted", .serialized)
struct DocExamplesTests {
    static var repositoryRoot: URL { Repository.root }

    /// Runs a generated script with bash from the repository root (bounded): its exit and
    /// what it printed (standard error after standard output).
    static func runScript(_ path: String) throws -> (ProcessRun, String) {
        let run = try ProcessRun.run(URL(fileURLWithPath: "/bin/bash"), [path], directory: repositoryRoot, timeoutMs: 180_000)
        return (run, run.stdout + run.stderr)
    }

    /// The first ```sh block after `heading`, as lines.
    static func shBlock(in text: String, after heading: String) throws -> [String] {
        let section = try #require(text.range(of: heading), "README has no \(heading)")
        let rest = text[section.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "\n```"))
        return rest[open.upperBound..<close.lowerBound].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The exit code a line's comment promises (`# exit N`), else 0.
    static func expectedExit(_ line: String) -> Int {
        guard let range = line.range(of: #"#\s*exit (\d+)"#, options: .regularExpression) else { return 0 }
        return Int(line[range].filter(\.isNumber)) ?? 0
    }

    /// The bash script: each README line, then a check of its exit status.
    static func script(_ lines: [String], binDir: String) -> String {
        var out = """
            set -u
            cleanup() { [ -n "${SOLO:-}" ] && kill "$SOLO" 2>/dev/null; [ -n "${T:-}" ] && [ -d "$T/demo" ] && "$B/aerodb" local-cluster stop --dir "$T/demo" > /dev/null 2>&1; true; }
            trap cleanup EXIT

            """
        for (number, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed == "swift build" { continue }
            let command = trimmed.hasPrefix("B=") ? "B=\(binDir)" : line
            let expected = expectedExit(line)
            let quoted = line.replacingOccurrences(of: "'", with: "'\\''")
            out += """
                printf '\\n$ %s\\n' '\(quoted)'
                \(command)
                rc=$?; if [ "$rc" -ne \(expected) ]; then printf 'README tour line %d: exit %s, expected %d: %s\\n' \(number + 1) "$rc" \(expected) '\(quoted)' >&2; exit 1; fi

                """
        }
        return out + "echo 'README tour: every line as promised'\n"
    }

    @Test("every line of the README tour exits as the README says, on a real local cluster")
    func tourAsPasted() throws {
        let readme = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let lines = try Self.shBlock(in: readme, after: "## Tour")
        #expect(lines.contains { $0.contains("local-cluster start") } && lines.contains { $0.contains("--kind failover") })
        let binDir = builtExecutable("aerodb").deletingLastPathComponent().path
        let scriptPath = NSTemporaryDirectory() + "aerodb-readme-tour-\(getpid()).sh"
        try Self.script(lines, binDir: binDir).write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }

        let (exit, output) = try Self.runScript(scriptPath)
        #expect(exit.status == 0, "the tour failed:\n\(output.suffix(6000))")
        #expect(output.contains("README tour: every line as promised"), "\(output.suffix(2000))")
    }

    /// Every example line of every `--help` (the lines under "Examples:" up to a blank line;
    /// a trailing `\` joins the next line), `aerodb`'s first: they run against one local
    /// cluster in order, so the switchover example changes the primary for those after it.
    static func helpExamples() throws -> [String] {
        var examples: [String] = []
        for executable in ["aerodb", "aerodb-policy"] {
            for command in try [[]] + EveryCommandExitCodeTests.leaves(executable) {
                let help = try EveryCommandExitCodeTests.run(executable, command + ["--help"]).stdout
                guard let start = help.range(of: "Examples:\n") else { continue }
                var pending = ""
                for raw in help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
                    let line = raw.trimmingCharacters(in: .whitespaces)
                    if line.isEmpty && pending.isEmpty { break }
                    // An example the help formatter wrapped (longer than its 80 columns) starts
                    // a line without the indent, and would not paste as one command.
                    #expect(raw.hasPrefix("  "), "\(executable) \(command): an example line wrapped by the help formatter: \(raw)")
                    if line.hasSuffix("\\") {
                        pending += line.dropLast() + " "
                        continue
                    }
                    let example = pending + line
                    pending = ""
                    if !examples.contains(example) { examples.append(example) }
                }
            }
        }
        return examples
    }

    @Test("every example in --help of both CLIs exits as it says, on a real local cluster")
    func helpExamplesAsPasted() throws {
        let examples = try Self.helpExamples()
        #expect(examples.count >= 15, "\(examples)")
        #expect(examples.contains { $0.hasPrefix("aerodb promote") } && examples.contains { $0.hasPrefix("aerodb-policy replay") })
        let binDir = builtExecutable("aerodb").deletingLastPathComponent().path
        let dir = NSTemporaryDirectory() + "aerodb-help-examples-\(getpid())"
        var lines = ["export PATH=\(binDir):$PATH", "T=\(dir); rm -rf $T; mkdir -p $T",
                     "aerodb local-cluster start --nodes 3 --dir $T/demo --base-port 7000 --policy-dir policies"]
        lines += examples
        var script = Self.script(lines, binDir: binDir)
        script = script.replacingOccurrences(of: "cleanup() {", with: "cleanup() { aerodb local-cluster stop --dir \"\(dir)/demo\" > /dev/null 2>&1;")
        let scriptPath = NSTemporaryDirectory() + "aerodb-help-examples-\(getpid()).sh"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(atPath: scriptPath)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let (exit, output) = try Self.runScript(scriptPath)
        #expect(exit.status == 0, "an example failed:\n\(output.suffix(6000))")
        #expect(output.contains("README tour: every line as promised"), "\(output.suffix(2000))")
    }
}
