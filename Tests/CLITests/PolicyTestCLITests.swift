// PolicyTestCLITests.swift — `aerodb-policy test` as a process: counts, the last line,
// failures showing expected against actual, --filter, --junit, and unusable inputs.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite struct PolicyTestCLITests {
    /// A test file against the shipped fixture and change-freeze: one case passes, one fails.
    static func mixedTestFile() throws -> String {
        let root = PolicyCLI.repositoryRoot.path
        return """
            {
              "facts": "\(root)/\(Shipped.failoverFacts)",
              "policies": ["\(root)/policies/change-freeze.lua"],
              "cases": [
                { "name": "passes: no freeze label", "expect": "allow" },
                { "name": "fails: expects a refusal that does not come", "expect": "refuse",
                  "source": "policy:change-freeze", "reason": "under a change freeze" }
              ]
            }
            """
    }

    @Test func shippedPolicyTestsAllPass() throws {
        var caseCount = 0
        let directory = PolicyCLI.repositoryRoot.appendingPathComponent("policies/tests")
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".json") {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            caseCount += try #require(document["cases"] as? [Any]).count
        }
        #expect(caseCount > 0)
        let run = try PolicyCLI.run(["test", "policies/tests"])
        #expect(run.status == 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        #expect(run.lastLine == "\(caseCount) passed, 0 failed")
        #expect(run.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS  ") }.count == caseCount)

        let defaultPath = try PolicyCLI.run(["test"])
        #expect(defaultPath.lastLine == "\(caseCount) passed, 0 failed", "PATH defaults to policies/tests")
    }

    @Test func aFailingCaseShowsExpectedAgainstActualAndExitsNonZero() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let file = try scratch.write("mixed.json", try Self.mixedTestFile())
        let run = try PolicyCLI.run(["test", file])
        #expect(run.status == 1)
        #expect(run.lastLine == "1 passed, 1 failed")
        #expect(run.stdout.contains("PASS  \(file): passes: no freeze label"))
        #expect(run.stdout.contains("FAIL  \(file): fails: expects a refusal that does not come"))
        #expect(run.stdout.contains("expected: refuse from policy:change-freeze with a reason containing \"under a change freeze\""))
        #expect(run.stdout.contains("actual:   allow"))
    }

    @Test func aFailingCaseShowsWhatItsPoliciesPrinted() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let root = PolicyCLI.repositoryRoot.path
        try scratch.write("chatty.lua", """
            return function(facts)
                print("looking at", facts.candidate.id)
                return "always refuses"
            end
            """)
        let file = try scratch.write("chatty.json", """
            { "facts": "\(root)/\(Shipped.failoverFacts)", "policies": ["chatty.lua"],
              "cases": [ { "name": "quiet when passing", "expect": "refuse", "source": "policy:chatty" },
                         { "name": "shows prints when failing", "expect": "allow" } ] }
            """)
        let run = try PolicyCLI.run(["test", file])
        #expect(run.lastLine == "1 passed, 1 failed")
        let printed = run.stdout.split(separator: "\n").filter { $0.contains("looking at") }
        #expect(printed.count == 1, "stdout: \(run.stdout)")
        #expect(printed.first?.contains("print:    [chatty] looking at\tb") == true)
    }

    @Test func filterRunsOnlyMatchingCases() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let file = try scratch.write("mixed.json", try Self.mixedTestFile())
        let run = try PolicyCLI.run(["test", file, "--filter", "no freeze label"])
        #expect(run.status == 0)
        #expect(run.lastLine == "1 passed, 0 failed")
        #expect(!run.stdout.contains("fails: expects"))

        let shipped = try PolicyCLI.run(["test", "--filter", "keep-a-replica.json"])
        let lines = shipped.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") }
        #expect(!lines.isEmpty)
        #expect(lines.allSatisfy { $0.contains("keep-a-replica.json") })
    }

    @Test func noTestFoundExitsNonZero() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let empty = try PolicyCLI.run(["test", scratch.url.path])
        #expect(empty.status == 1)
        #expect(empty.lastLine == "0 passed, 0 failed")
        #expect(empty.stderr.contains("no test case found"))

        let unmatched = try PolicyCLI.run(["test", "--filter", "matches no case at all"])
        #expect(unmatched.status == 1)
        #expect(unmatched.lastLine == "0 passed, 0 failed")
    }

    @Test func junitReportIsValidXMLWithCountsAndFailures() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let file = try scratch.write("mixed & <odd> \"name\".json", try Self.mixedTestFile())
        let report = scratch.path("report.xml")
        let run = try PolicyCLI.run(["test", file, "--junit", report])
        #expect(run.status == 1)

        let data = try Data(contentsOf: URL(fileURLWithPath: report))
        let collector = JUnitCollector()
        let parser = XMLParser(data: data)
        parser.delegate = collector
        #expect(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))")
        #expect(collector.elements.first?.name == "testsuites")
        #expect(collector.elements.first?.attributes["tests"] == "2")
        #expect(collector.elements.first?.attributes["failures"] == "1")
        let suites = collector.elements.filter { $0.name == "testsuite" }
        #expect(suites.count == 1)
        #expect(suites.first?.attributes["name"] == file)
        let cases = collector.elements.filter { $0.name == "testcase" }
        #expect(cases.map { $0.attributes["name"] } == ["passes: no freeze label", "fails: expects a refusal that does not come"])
        let failures = collector.elements.filter { $0.name == "failure" }
        #expect(failures.count == 1)
        #expect(collector.text.contains("actual:   allow"))
    }

    @Test func overridesEditElementsByIndexAndQuotedKeys() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let root = PolicyCLI.repositoryRoot.path
        let file = try scratch.write("overrides.json", """
            {
              "facts": "\(root)/\(Shipped.failoverFacts)",
              "policies": ["\(root)/policies"],
              "cases": [
                { "name": "quoted key", "expect": "refuse", "source": "policy:change-freeze",
                  "overrides": [ { "path": "$.cluster.labels[\\"change-freeze\\"]", "value": "on" } ] },
                { "name": "element by index", "expect": "refuse", "source": "rule:DUR-2",
                  "overrides": [ { "path": "$.nodes[2].durable_lsn", "value": 1300 },
                                 { "path": "$.nodes[2].applied_lsn", "value": 1300 } ] },
                { "name": "remove an element", "expect": "refuse", "source": "policy:keep-a-replica",
                  "overrides": [ { "path": "$.nodes[2]", "remove": true } ] },
                { "name": "index out of range fails the case", "expect": "allow",
                  "overrides": [ { "path": "$.nodes[9].reachable", "value": false } ] },
                { "name": "unusable facts after overrides fail the case", "expect": "allow",
                  "overrides": [ { "path": "$.cluster.epoch", "remove": true } ] }
              ]
            }
            """)
        let run = try PolicyCLI.run(["test", file])
        #expect(run.lastLine == "3 passed, 2 failed", "stdout: \(run.stdout)")
        #expect(run.stdout.contains("index 9 is beyond the 3 element(s) of $.nodes"))
        #expect(run.stdout.contains("$.cluster.epoch"))
    }

    @Test func unusableTestFilesExitTwoNamingTheField() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let typo = try scratch.write("typo.json", """
            { "facts": "x.json", "policies": [], "cases": [ { "name": "a", "expcet": "allow" } ] }
            """)
        let run = try PolicyCLI.run(["test", typo])
        #expect(run.status == 2)
        #expect(run.stderr.contains("cases[0].expcet"), "stderr: \(run.stderr)")

        let badPath = try scratch.write("bad-path.json", """
            { "facts": "x.json", "policies": [], "cases": [ { "name": "a", "expect": "allow",
              "overrides": [ { "path": "nodes[1]", "value": 1 } ] } ] }
            """)
        let path = try PolicyCLI.run(["test", badPath])
        #expect(path.status == 2)
        #expect(path.stderr.contains("cases[0].overrides[0].path"), "stderr: \(path.stderr)")

        let missing = try PolicyCLI.run(["test", "no/such/tests"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no/such/tests"))
    }
}

/// Collects the elements and character data of a parsed XML document.
final class JUnitCollector: NSObject, XMLParserDelegate {
    struct Element {
        let name: String
        let attributes: [String: String]
    }
    var elements: [Element] = []
    var text = ""

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append(Element(name: elementName, attributes: attributes))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }
}
