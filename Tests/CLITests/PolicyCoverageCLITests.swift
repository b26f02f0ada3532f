// PolicyCoverageCLITests.swift — `aerodb-policy test --coverage`: the per-file lines, the
// uncovered line numbers, --coverage-min, the LCOV tracefile (rendered by genhtml when it is
// installed) and the coverage in --format json.
import Foundation
import Testing
import AeroTestSupport

@Suite struct PolicyCoverageCLITests {
    /// A policy with a branch its test never takes: lines 4 and 5 never run.
    static let branchyPolicy = """
        -- branchy.lua
        return function(facts)
            if facts.request.kind == "never" then
                local note = "unreachable in the tests"
                return note
            end
            return nil
        end
        """

    static func branchyTests(root: String) -> String {
        """
        { "facts": "\(root)/\(Shipped.failoverFacts)", "policies": ["branchy.lua"],
          "cases": [ { "name": "allows", "expect": "allow" } ] }
        """
    }

    @Test func shippedPoliciesAreFullyCoveredByTheirOwnTests() throws {
        let run = try PolicyCLI.run(["test", "policies/tests", "--coverage-min", "100"])
        #expect(run.status == 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        let policies = try FileManager.default.contentsOfDirectory(
            atPath: PolicyCLI.repositoryRoot.appendingPathComponent("policies").path)
            .filter { $0.hasSuffix(".lua") && !$0.hasSuffix(".d.lua") }
        #expect(!policies.isEmpty)
        for name in policies {
            let line = run.stdout.split(separator: "\n").first { $0.hasPrefix("\(name)  ") }
            let text = try #require(line.map(String.init), "no coverage line for \(name): \(run.stdout)")
            #expect(text.hasSuffix("lines  100.0%"), "\(text)")
            let counts = try #require(text.split(separator: " ").first { $0.contains("/") })
            let parts = counts.split(separator: "/").compactMap { Int($0) }
            #expect(parts.count == 2 && parts[0] == parts[1] && parts[0] > 0, "\(text)")
        }
        #expect(run.stdout.contains("\ntotal  "))
        #expect(run.lastLine.hasSuffix("passed, 0 failed"), "the summary stays the last line")
    }

    @Test func uncoveredLinesAreNamedAndTheMinimumFails() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try scratch.write("branchy.lua", Self.branchyPolicy)
        let tests = try scratch.write("branchy.json", Self.branchyTests(root: PolicyCLI.repositoryRoot.path))

        let measured = try PolicyCLI.run(["test", tests, "--coverage"])
        #expect(measured.status == 0, "coverage alone never fails: \(measured.stdout)")
        // Lines with code: 3, 4, 5, 7 and 8 (`end`: where the main chunk makes and returns the
        // closure). Line 2 holds no instruction (the closure is made at its `end`), line 6
        // neither (an if without else jumps from line 3).
        #expect(measured.stdout.contains("branchy.lua  3/5 lines  60.0%  uncovered: 4, 5"), "\(measured.stdout)")
        #expect(measured.stdout.contains("total  3/5 lines  60.0%"))

        let below = try PolicyCLI.run(["test", tests, "--coverage-min", "70"])
        #expect(below.status == 1)
        #expect(below.stderr.contains("line coverage 60.0% is below --coverage-min 70.0%"), "\(below.stderr)")
        #expect(below.lastLine == "1 passed, 0 failed")

        let reached = try PolicyCLI.run(["test", tests, "--coverage-min", "60"])
        #expect(reached.status == 0)

        let unwritable = try PolicyCLI.run(["test", tests, "--coverage-lcov", scratch.path("no/such/dir/x.lcov")])
        #expect(unwritable.status == 2)
        #expect(unwritable.stderr.contains("--coverage-lcov \(scratch.path("no/such/dir/x.lcov")): cannot write the tracefile"), "\(unwritable.stderr)")

        try scratch.write("broken.lua", "return function(facts) return end end")
        let broken = try scratch.write("broken.json", """
            { "facts": "\(PolicyCLI.repositoryRoot.path)/\(Shipped.failoverFacts)", "policies": ["broken.lua"],
              "cases": [ { "name": "allows", "expect": "allow" } ] }
            """)
        let uncompiled = try PolicyCLI.run(["test", broken, "--coverage"])
        #expect(uncompiled.status == 1)
        #expect(uncompiled.stdout.contains("broken.lua  0/0 lines  no code (does not compile)"), "\(uncompiled.stdout)")

        let bad = try PolicyCLI.run(["test", tests, "--coverage-min", "101"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--coverage-min must be a percentage from 0 to 100"))
    }

    @Test func coverageDoesNotChangeDecisionsOrBudgetUse() throws {
        // The same cases with and without the line hook: equal results, case by case.
        let plain = try PolicyCLI.run(["test", "policies/tests", "--format", "json"])
        let covered = try PolicyCLI.run(["test", "policies/tests", "--format", "json", "--coverage"])
        let a = try #require(try JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [String: Any])
        let b = try #require(try JSONSerialization.jsonObject(with: Data(covered.stdout.utf8)) as? [String: Any])
        let casesA = try #require(a["cases"] as? [[String: Any]])
        let casesB = try #require(b["cases"] as? [[String: Any]])
        #expect(casesA.count == casesB.count && !casesA.isEmpty)
        for (x, y) in zip(casesA, casesB) {
            #expect(x["decision"] as? String == y["decision"] as? String)
            #expect((x["reasons"] as? [[String: String]]) == (y["reasons"] as? [[String: String]]))
        }
        #expect(a["coverage"] == nil)
        let coverage = try #require(b["coverage"] as? [String: Any])
        #expect(coverage["covered"] as? Int == coverage["total"] as? Int)
    }

    @Test func lcovTracefileHasRecordsAndGenhtmlRendersIt() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let policy = try scratch.write("branchy.lua", Self.branchyPolicy)
        let tests = try scratch.write("branchy.json", Self.branchyTests(root: PolicyCLI.repositoryRoot.path))
        let lcov = scratch.path("coverage.lcov")
        let run = try PolicyCLI.run(["test", tests, "--coverage-lcov", lcov])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let text = try String(contentsOfFile: lcov, encoding: .utf8)
        let resolved = URL(fileURLWithPath: policy).resolvingSymlinksInPath().path
        let lines = text.split(separator: "\n").map(String.init)
        let source = try #require(lines.first { $0.hasPrefix("SF:") })
        #expect(URL(fileURLWithPath: String(source.dropFirst(3))).resolvingSymlinksInPath().path == resolved)
        #expect(lines.filter { $0.hasPrefix("DA:") } == ["DA:3,1", "DA:4,0", "DA:5,0", "DA:7,1", "DA:8,1"])
        #expect(lines.contains("LF:5") && lines.contains("LH:3") && lines.last == "end_of_record")

        guard let genhtml = Self.genhtml() else {
            print("genhtml is not installed (scripts/install-deps installs lcov); the LCOV file was checked by hand only")
            return
        }
        let output = scratch.path("html")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: genhtml)
        process.arguments = ["--quiet", "--output-directory", output, lcov]
        let log = try scratch.write("genhtml.log", "")
        let handle = try #require(FileHandle(forWritingAtPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let status = ChildProcess.wait(process, timeoutMs: 60_000) ?? ChildProcess.waitOrKill(process, timeoutMs: 0)
        try handle.close()
        let genhtmlLog = try String(contentsOfFile: log, encoding: .utf8)
        #expect(status.status == 0, "genhtml: \(genhtmlLog)")
        let index = try String(contentsOfFile: output + "/index.html", encoding: .utf8)
        #expect(index.contains("60.0"), "the index shows the line rate")
        let pages = FileManager.default.enumerator(atPath: output)?.compactMap { $0 as? String } ?? []
        #expect(pages.contains { $0.hasSuffix("branchy.lua.gcov.html") }, "\(pages)")
    }

    static func genhtml() -> String? {
        ["/usr/bin/genhtml", "/usr/local/bin/genhtml"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
