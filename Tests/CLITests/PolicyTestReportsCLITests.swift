// PolicyTestReportsCLITests.swift — the reports of `aerodb-policy test` read by real
// consumers: the JUnit XML by Python's junitparser (installed by scripts/install-deps), the
// JSON document parsed back; and a failing case explaining itself with the facts it read.
import Foundation
import Testing
import AeroTestSupport

@Suite struct PolicyTestReportsCLITests {
    /// A case expecting an allowance that keep-a-replica refuses: c is recovering.
    static func failingFile(root: String) -> String {
        """
        { "facts": "\(root)/\(Shipped.failoverFacts)", "policies": ["\(root)/policies/keep-a-replica.lua"],
          "cases": [ { "name": "passes", "expect": "allow" },
                     { "name": "fails: c is recovering",
                       "overrides": [ { "path": "$.nodes[2].recovering", "value": true } ], "expect": "allow" } ] }
        """
    }

    /// The python3 first on PATH: the one scripts/install-deps installed junitparser for.
    static func python3() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test func aFailingCaseShowsTheFactsItsPolicyReadWithValues() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let file = try scratch.write("failing.json", Self.failingFile(root: PolicyCLI.repositoryRoot.path))
        let run = try PolicyCLI.run(["test", file])
        #expect(run.status == 1)
        #expect(run.stdout.contains("      policy:keep-a-replica: only 0 healthy replica(s) would remain to follow b"))
        #expect(run.stdout.contains("      facts read by policy:keep-a-replica:\n"), "\(run.stdout)")
        for line in ["$.request.kind = \"failover\"", "$.request.candidate = \"b\"", "$.cluster.primary = \"a\"",
                     "$.nodes[2].role = \"replica\"", "$.nodes[2].reachable = true", "$.nodes[2].wal.corrupt = false",
                     "$.nodes[2].recovering = true", "$.cluster.epoch = 7"] {
            #expect(run.stdout.contains("\n        \(line)\n"), "\(line): \(run.stdout)")
        }
        // Only the read that returned nothing shows for the container ipairs walked; the
        // intermediate containers ($.nodes, $.nodes[2].wal) are not repeated.
        #expect(run.stdout.contains("$.nodes[3] = nil (absent)"))
        #expect(!run.stdout.contains("$.nodes = "))
        #expect(!run.stdout.contains("$.nodes[2].wal = "))
        // A passing case prints nothing of the kind.
        #expect(run.stdout.components(separatedBy: "facts read by").count == 2)
    }

    @Test func aFailingRuleShowsTheFactsItRead() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let root = PolicyCLI.repositoryRoot.path
        let file = try scratch.write("rule.json", """
            { "facts": "\(root)/\(Shipped.failoverFacts)", "policies": [],
              "cases": [ { "name": "async failover", "overrides": [ { "path": "$.cluster.commit_mode", "value": "async" } ],
                           "expect": "allow" } ] }
            """)
        let run = try PolicyCLI.run(["test", file])
        #expect(run.status == 1)
        #expect(run.stdout.contains("facts read by rule:DUR-1:"), "\(run.stdout)")
        #expect(run.stdout.contains("$.cluster.commit_mode = \"async\""))
    }

    @Test func jsonFormatIsOneDocumentWithFactsRead() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let file = try scratch.write("failing.json", Self.failingFile(root: PolicyCLI.repositoryRoot.path))
        let run = try PolicyCLI.run(["test", file, "--format", "json"])
        #expect(run.status == 1)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(document["passed"] as? Int == 1 && document["failed"] as? Int == 1)
        let cases = try #require(document["cases"] as? [[String: Any]])
        #expect(cases.map { $0["passed"] as? Bool } == [true, false])
        #expect(cases[0]["failure"] is NSNull)
        #expect(cases[1]["decision"] as? String == "refuse")
        let reads = try #require(cases[1]["facts_read"] as? [[String: Any]])
        #expect(reads.first?["source"] as? String == "policy:keep-a-replica")
        let values = try #require(reads.first?["values"] as? [[String: String]])
        #expect(values.contains { $0["path"] == "$.nodes[2].recovering" && $0["value"] == "true" })
        let reasons = try #require(cases[1]["reasons"] as? [[String: String]])
        #expect(reasons.first?["source"] == "policy:keep-a-replica")
    }

    @Test func junitXMLIsReadByJunitparser() throws {
        guard let python = Self.python3() else {
            print("python3 is not installed: the JUnit report is not checked by junitparser")
            return
        }
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let file = try scratch.write("failing & <odd>.json", Self.failingFile(root: PolicyCLI.repositoryRoot.path))
        let report = scratch.path("report.xml")
        let run = try PolicyCLI.run(["test", file, "--junit", report])
        #expect(run.status == 1)
        let script = try scratch.write("check.py", """
            import json, sys
            from junitparser import JUnitXml, Failure
            xml = JUnitXml.fromfile(sys.argv[1])
            out = {"suites": []}
            for suite in xml:
                cases = []
                for case in suite:
                    failures = [r for r in case.result if isinstance(r, Failure)]
                    cases.append({"name": case.name, "classname": case.classname,
                                  "failed": bool(failures),
                                  "message": failures[0].message if failures else None,
                                  "text": failures[0].text if failures else None})
                out["suites"].append({"name": suite.name, "tests": suite.tests, "failures": suite.failures, "cases": cases})
            print(json.dumps(out))
            """)
        let output = scratch.path("out.json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, report]
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: output))
        let errors = try scratch.write("err.txt", "")
        let errorHandle = try #require(FileHandle(forWritingAtPath: errors))
        process.standardOutput = handle
        process.standardError = errorHandle
        try process.run()
        let exit = ChildProcess.wait(process, timeoutMs: 60_000) ?? ChildProcess.waitOrKill(process, timeoutMs: 0)
        try handle.close()
        try errorHandle.close()
        let stderr = try String(contentsOfFile: errors, encoding: .utf8)
        try #require(exit.status == 0, "junitparser: \(stderr) (scripts/install-deps installs it)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let suites = try #require(parsed["suites"] as? [[String: Any]])
        #expect(suites.count == 1)
        #expect(suites[0]["name"] as? String == file)
        #expect(suites[0]["tests"] as? Int == 2 && suites[0]["failures"] as? Int == 1)
        let cases = try #require(suites[0]["cases"] as? [[String: Any]])
        #expect(cases.map { $0["name"] as? String } == ["passes", "fails: c is recovering"])
        #expect(cases.map { $0["failed"] as? Bool } == [false, true])
        #expect(cases[1]["message"] as? String == "expected: allow; actual: refuse")
        let text = try #require(cases[1]["text"] as? String)
        #expect(text.contains("$.nodes[2].recovering = true"), "\(text)")
    }
}
