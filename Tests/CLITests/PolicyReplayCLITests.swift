// PolicyReplayCLITests.swift — `aerodb-policy replay` as a process, on decision records a
// real node wrote (examples/decisions/, recorded by `aerodb local-cluster` with the shipped
// policies, rewritten by examples/record-decisions) and on `aerodb decisions show` output
// (examples/decisions-show/).
import Foundation
import Testing

@Suite struct PolicyReplayCLITests {
    static let records = "examples/decisions"
    static let shown = "examples/decisions-show"

    /// The shipped policies with require-requested-by narrowed to one allowed requester.
    static func proposedPolicies(_ scratch: ScratchDirectory) throws -> String {
        for name in ["change-freeze", "different-zone-from-primary", "keep-a-replica", "max-replication-lag"] {
            try scratch.write("proposed/\(name).lua", try PolicyCLI.read("policies/\(name).lua"))
        }
        let original = try PolicyCLI.read("policies/require-requested-by.lua")
        let narrowed = original.replacingOccurrences(
            of: "local REQUESTERS_ALLOWED = nil", with: "local REQUESTERS_ALLOWED = { \"ops-oncall\" }")
        try #require(narrowed != original)
        try scratch.write("proposed/require-requested-by.lua", narrowed)
        return scratch.path("proposed")
    }

    /// The id of n3's record (alice's switchover); ids carry the time they were recorded
    /// (examples/record-decisions rewrites the records).
    static func aliceRecord() throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: PolicyCLI.repositoryRoot.appendingPathComponent(records).path)
        let name = try #require(names.filter { $0.hasPrefix("n3-") && $0.hasSuffix(".json") }.sorted().last)
        return String(name.dropLast(".json".count))
    }

    static func recordCount() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: PolicyCLI.repositoryRoot.appendingPathComponent(records).path)
            .filter { $0.hasSuffix(".json") }.count
    }

    @Test func theSamePoliciesChangeNothing() throws {
        let count = try Self.recordCount()
        #expect(count >= 3)
        let run = try PolicyCLI.run(["replay", "--decisions", Self.records, Self.shown, "--policy", "policies"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.lastLine == "\(count + 1) decisions, 0 changed")
        #expect(!run.stdout.contains("CHANGED"))
    }

    @Test func aNarrowerPolicyFlipsAnAllowanceAndNamesItself() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let proposed = try Self.proposedPolicies(scratch)
        let run = try PolicyCLI.run(["replay", "--decisions", Self.records, "--policy", proposed])
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        // n3's switchover was asked for by alice and allowed; n2's by ops-oncall stays allowed;
        // n2's anonymous one was refused and stays refused for the same reason.
        #expect(run.lastLine == "\(try Self.recordCount()) decisions, 1 changed")
        #expect(run.stdout.contains("CHANGED \(try Self.aliceRecord()): allow -> refuse"), "\(run.stdout)")
        #expect(run.stdout.contains("  + policy:require-requested-by: 'alice' is not an allowed requester"))
        #expect(run.stdout.contains("  responsible: policy:require-requested-by"))
        // The examples were recorded before outcomes were: replay says so rather than guess one.
        #expect(run.stdout.contains("  recorded outcome: none recorded"), "\(run.stdout)")

        let json = try PolicyCLI.run(["replay", "--decisions", Self.records, "--policy", proposed, "--format", "json"])
        #expect(json.status == 1)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(document["changed"] as? Int == 1)
        #expect(document["total"] as? Int == (try Self.recordCount()))
        let decisions = try #require(document["decisions"] as? [[String: Any]])
        let changed = decisions.filter { $0["changed"] as? Bool == true }
        #expect(changed.count == 1)
        #expect(changed.first?["recorded"] as? String == "allow")
        #expect(changed.first?["replayed"] as? String == "refuse")
        #expect(changed.first?["responsible"] as? [String] == ["policy:require-requested-by"])
    }

    @Test func droppingAPolicyFlipsARefusalToAllow() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        for name in ["change-freeze", "different-zone-from-primary", "keep-a-replica", "max-replication-lag"] {
            try scratch.write("fewer/\(name).lua", try PolicyCLI.read("policies/\(name).lua"))
        }
        let run = try PolicyCLI.run(["replay", "--decisions", Self.records, "--policy", scratch.path("fewer")])
        #expect(run.status == 1)
        #expect(run.stdout.contains("refuse -> allow"), "\(run.stdout)")
        #expect(run.stdout.contains("  - policy:require-requested-by: the request does not say who asked for it"))
        #expect(run.lastLine == "\(try Self.recordCount()) decisions, 1 changed")
    }

    @Test func anUnusableRecordNamesTheFileAndTheField() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let good = try PolicyCLI.read("\(Self.records)/\(try Self.aliceRecord()).json")
        let cases: [(String, String, String)] = [
            ("syntax.json", "{\"facts\": ", "not valid JSON: line 1"),
            ("facts-only.json", try PolicyCLI.read(Shipped.failoverFacts), "facts: missing"),
            ("no-decision.json", good.replacingOccurrences(of: "\"decision\":{", with: "\"verdict\":{"), "decision: missing"),
            ("bad-facts.json", good.replacingOccurrences(of: "\"commit_mode\":\"sync\"", with: "\"commit_mode\":7"), "facts: $.cluster.commit_mode"),
            ("contradiction.json", good.replacingOccurrences(of: "\"allowed\":true", with: "\"allowed\":false"), "allowed: false contradicts"),
        ]
        for (name, text, message) in cases {
            #expect(text != good || name == "syntax.json")
            let file = try scratch.write(name, text)
            let run = try PolicyCLI.run(["replay", "--decisions", file, "--policy", "policies"])
            #expect(run.status == 2, "\(name): \(run.stdout)")
            #expect(run.stderr.contains("decision record \(file): \(message)"), "\(name): \(run.stderr)")
        }
        let missing = try PolicyCLI.run(["replay", "--decisions", scratch.path("absent"), "--policy", "policies"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no such file or directory"))
        let none = try PolicyCLI.run(["replay", "--policy", "policies"])
        #expect(none.status == 2)
        #expect(none.stderr.contains("--decisions"))
    }
}
