// PolicyExploreCLITests.swift — `aerodb-policy explore` as a process: the one-field table,
// the two-field grid, the JSON cells (each checked against `eval` of the same facts), listed
// values, and the bounds.
import Foundation
import Testing

@Suite struct PolicyExploreCLITests {
    static let lag = "$.nodes[1].applied_lsn"

    @Test func oneFieldPrintsATableOfDecisions() throws {
        let run = try PolicyCLI.run(["explore", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies,
                                     "--vary", "\(Self.lag)=0..1200:300"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(Self.lag)  decision  sources")
        // The most advanced position is 1200 (b's durable_lsn): 0 lags 1200 > 1000.
        #expect(lines.contains { $0.hasPrefix("0 ") && $0.hasSuffix("refuse    policy:max-replication-lag") }, "\(run.stdout)")
        #expect(lines.contains { $0.hasPrefix("300 ") && $0.hasSuffix("allow") })
        #expect(run.lastLine == "5 cells, 4 allowed, 1 refused")
    }

    @Test func twoFieldsPrintAGridWithKeyedSources() throws {
        let run = try PolicyCLI.run(["explore", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies,
                                     "--vary", "\(Self.lag)=100..300:100", "--vary", "$.nodes[1].labels.zone=eu-1a,eu-1b"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(lines[0] == [Self.lag, "\\", "$.nodes[1].labels.zone", "\"eu-1a\"", "\"eu-1b\""])
        #expect(lines[1] == ["100", "refuse[1]", "refuse[2]"])
        #expect(lines[2] == ["200", "refuse[3]", "allow"])
        #expect(run.stdout.contains("[1] policy:different-zone-from-primary, policy:max-replication-lag"))
        #expect(run.stdout.contains("[2] policy:max-replication-lag"))
        #expect(run.stdout.contains("[3] policy:different-zone-from-primary"))
        #expect(run.lastLine == "6 cells, 2 allowed, 4 refused")
    }

    @Test func everyJSONCellIsWhatEvalDecides() throws {
        let run = try PolicyCLI.run(["explore", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies,
                                     "--vary", "\(Self.lag)=150..250:50", "--vary", "$.cluster.commit_mode=sync,async",
                                     "--format", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let cells = try #require(document["cells"] as? [[String: Any]])
        #expect(cells.count == 6)
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let base = try PolicyCLI.read(Shipped.failoverFacts)
        for cell in cells {
            let values = try #require(cell["values"] as? [String: Any])
            let lsn = try #require(values[Self.lag] as? Int)
            let mode = try #require(values["$.cluster.commit_mode"] as? String)
            let facts = base.replacingOccurrences(of: "\"applied_lsn\": 1200", with: "\"applied_lsn\": \(lsn)")
                .replacingOccurrences(of: "\"commit_mode\": \"sync\"", with: "\"commit_mode\": \"\(mode)\"")
            let file = try scratch.write("cell-\(lsn)-\(mode).json", facts)
            let eval = try PolicyCLI.run(["eval", "--facts", file, "--policy", Shipped.policies, "--format", "json"])
            let decided = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
            #expect(cell["decision"] as? String == decided["decision"] as? String, "\(values)")
            var sources: [String] = []
            for reason in decided["reasons"] as? [[String: String]] ?? [] where !sources.contains(reason["source"]!) {
                sources.append(reason["source"]!)
            }
            #expect(cell["sources"] as? [String] == sources, "\(values)")
        }
        #expect(Set(cells.compactMap { $0["decision"] as? String }) == ["allow", "refuse"], "the surface is not flat")
    }

    @Test func boundsAndBadSpecsAreUsageErrors() throws {
        let tooMany = try PolicyCLI.run(["explore", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies,
                                         "--vary", "\(Self.lag)=1..101", "--vary", "$.nodes[2].applied_lsn=1..100"])
        #expect(tooMany.status == 2)
        #expect(tooMany.stderr.contains("more than 10000 cells (101 x 100 values)"), "\(tooMany.stderr)")

        let exactly = try PolicyCLI.run(["explore", "--facts", Shipped.failoverFacts, "--vary", "\(Self.lag)=1..10000", "--format", "json"])
        #expect(exactly.status == 0, "10,000 cells are within the bound: \(exactly.stderr)")

        for (spec, message) in [("nodes=1..2", "a path starts with '$'"), ("\(Self.lag)=5..1", "FROM 5 is greater than TO 1"),
                                ("\(Self.lag)=1..9:0", "STEP in FROM..TO[:STEP] must be a positive integer"),
                                ("\(Self.lag)", "expected PATH=FROM..TO[:STEP] or PATH=a,b,c"), ("\(Self.lag)=1,,2", "an empty value")] {
            let run = try PolicyCLI.run(["explore", "--facts", Shipped.failoverFacts, "--vary", spec])
            #expect(run.status == 2, "\(spec)")
            #expect(run.stderr.contains(message), "\(spec): \(run.stderr)")
        }
        let invalid = try PolicyCLI.run(["explore", "--facts", Shipped.failoverFacts, "--vary", "$.cluster.epoch=x,7"])
        #expect(invalid.status == 2)
        #expect(invalid.stderr.contains("with $.cluster.epoch = \"x\""), "\(invalid.stderr)")
    }
}
