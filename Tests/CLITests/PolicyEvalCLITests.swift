// PolicyEvalCLITests.swift — `aerodb-policy eval` as a process: exit codes 0/1/2, both
// output formats, stdin, diagnostics naming the file and field, and print containment.
import AeroCore
import Foundation
import Testing

@Suite struct PolicyEvalCLITests {
    @Test func allowedDecisionExitsZeroAndSaysSoFirst() throws {
        let run = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.hasPrefix("ALLOWED"))
        #expect(!run.stdout.contains("rules:"), "the explanation is only printed with --explain")
    }

    /// Journaled decisions keep replaying: an aerodb.facts/1 document is still accepted, and a
    /// /2 document (with cluster.history and the policy digests) too.
    @Test func bothSchemasAreAccepted() throws {
        let v1 = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies, "--format", "json"])
        #expect(v1.status == 0, "stderr: \(v1.stderr)")
        #expect(try PolicyCLI.read(Shipped.failoverFacts).contains("\"aerodb.facts/1\""))
        #expect(v1.stdout.contains("an aerodb.facts/1 document carries no policy set digests"))
        let v2 = try PolicyCLI.run(["eval", "--facts", "policies/tests/fixtures/switchover-after-promotion.json", "--policy", Shipped.policies])
        #expect(v2.status == 1, "stderr: \(v2.stderr)")
        #expect(v2.stdout.contains("policy:min-interval-between-promotions:"), "\(v2.stdout)")
    }

    @Test func refusedDecisionExitsOneWithOneLinePerReason() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let facts = try scratch.write("frozen.json", try Shipped.failoverFacts(
            replacing: "\"labels\": { \"team\": \"storage\" }",
            with: "\"labels\": { \"team\": \"storage\", \"change-freeze\": \"audit week\" }"))
        let run = try PolicyCLI.run(["eval", "--facts", facts, "--policy", Shipped.policies])
        #expect(run.status == 1, "stderr: \(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("REFUSED") == true)
        #expect(lines.contains { $0.contains("policy:change-freeze:") && $0.contains("audit week") })
    }

    @Test func explainListsEveryRuleEveryPolicyDigestsAndVersion() throws {
        let run = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies, "--explain"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        for rule in ["REQ-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "FENCE-1"] {
            #expect(run.stdout.contains(rule), "rule \(rule) missing from the explanation")
        }
        for policy in ["change-freeze", "different-zone-from-primary", "keep-a-replica",
                       "max-replication-lag", "require-requested-by"] {
            #expect(run.stdout.contains("[\(policy)]"), "policy \(policy) missing from the explanation")
        }
        #expect(!run.stdout.contains("aerodb-facts"), "the definition file is not a policy")
        #expect(run.stdout.contains("facts digest"))
        #expect(run.stdout.contains("policy set digest"))
        #expect(run.stdout.contains(AeroVersion.string))
    }

    @Test func jsonOutputIsExactlyOneDocument() throws {
        let run = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies, "--format", "json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(document["decision"] as? String == "allow")
        #expect((document["reasons"] as? [Any])?.isEmpty == true)
        let ruleIDs = try #require(document["rules"] as? [[String: Any]]).compactMap { $0["id"] as? String }
        #expect(Set(["REQ-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "FENCE-1"]).isSubset(of: Set(ruleIDs)))
        #expect((document["policies"] as? [Any])?.count == (try Shipped.policyNames()).count)
        #expect((document["facts_digest"] as? String)?.count == 64)
        #expect(document["policy_set_digest"] is String)
        #expect(document["engine_version"] as? String == AeroVersion.string)
    }

    @Test func jsonRefusalCitesRuleSources() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let facts = try scratch.write("async.json", try Shipped.failoverFacts(
            replacing: "\"commit_mode\": \"sync\"", with: "\"commit_mode\": \"async\""))
        let run = try PolicyCLI.run(["eval", "--facts", facts, "--format", "json"])
        #expect(run.status == 1, "stderr: \(run.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(document["decision"] as? String == "refuse")
        let reasons = try #require(document["reasons"] as? [[String: Any]])
        #expect(reasons.contains { $0["source"] as? String == "rule:DUR-1" })
        #expect((document["policies"] as? [Any])?.isEmpty == true, "no --policy: native rules only")
    }

    @Test func factsFromStandardInputDecideLikeTheFile() throws {
        let text = try PolicyCLI.read(Shipped.failoverFacts)
        let fromFile = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", Shipped.policies, "--format", "json"])
        let fromStdin = try PolicyCLI.run(["eval", "--facts", "-", "--policy", Shipped.policies, "--format", "json"], stdin: text)
        #expect(fromStdin.status == 0, "stderr: \(fromStdin.stderr)")
        #expect(fromStdin.stdout == fromFile.stdout)
    }

    @Test func unusableFactsExitTwoNamingTheField() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let duplicate = try scratch.write("duplicate.json", try Shipped.failoverFacts(
            replacing: "\"id\": \"c\"", with: "\"id\": \"b\""))
        let run = try PolicyCLI.run(["eval", "--facts", duplicate, "--policy", Shipped.policies])
        #expect(run.status == 2)
        #expect(run.stdout.isEmpty, "nothing is half-evaluated")
        #expect(run.stderr.contains(duplicate))
        #expect(run.stderr.contains("$.nodes[2].id"), "stderr: \(run.stderr)")

        let mistyped = try scratch.write("mistyped.json", try Shipped.failoverFacts(
            replacing: "\"epoch\": 7, \"primary\"", with: "\"epoch\": \"seven\", \"primary\""))
        let typed = try PolicyCLI.run(["eval", "--facts", mistyped])
        #expect(typed.status == 2)
        #expect(typed.stderr.contains("$.cluster.epoch"), "stderr: \(typed.stderr)")
    }

    @Test func factsThatAreNotJSONExitTwoNamingTheLine() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let broken = try scratch.write("broken.json", "{\n  \"schema\": \"aerodb.facts/1\",\n  oops\n}\n")
        let run = try PolicyCLI.run(["eval", "--facts", broken])
        #expect(run.status == 2)
        #expect(run.stderr.contains(broken))
        #expect(run.stderr.contains("line 3"), "stderr: \(run.stderr)")

        let stdin = try PolicyCLI.run(["eval", "--facts", "-"], stdin: "not json")
        #expect(stdin.status == 2)
        #expect(stdin.stderr.contains("standard input"), "stderr: \(stdin.stderr)")
    }

    @Test func missingFilesExitTwoNamingThePath() throws {
        let facts = try PolicyCLI.run(["eval", "--facts", "no/such/facts.json"])
        #expect(facts.status == 2)
        #expect(facts.stderr.contains("no/such/facts.json"))

        let policy = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", "no/such/policy.lua"])
        #expect(policy.status == 2)
        #expect(policy.stdout.isEmpty)
        #expect(policy.stderr.contains("no/such/policy.lua"))

        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try scratch.write("policies/README.txt", "no policy here\n")
        let empty = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", scratch.path("policies")])
        #expect(empty.status == 2, "an empty policy directory must not quietly drop the site's refusals")
        #expect(empty.stderr.contains("holds no policy"))
    }

    @Test(arguments: [
        ["eval"],
        ["eval", "--facts", Shipped.failoverFacts, "--format", "xml"],
        ["eval", "--facts", Shipped.failoverFacts, "--no-such-flag"],
        ["no-such-command"],
    ])
    func badFlagsExitTwo(_ arguments: [String]) throws {
        let run = try PolicyCLI.run(arguments)
        #expect(run.status == 2, "\(arguments): stderr \(run.stderr)")
        #expect(!run.stderr.isEmpty)
    }

    @Test func policyPrintNeverReachesStdoutOutsideTheExplanation() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let policy = try scratch.write("chatty.lua", """
            return function(facts)
                for i = 1, 3 do print("chatty-line-" .. i) end
                return nil
            end
            """)
        let plain = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", policy])
        #expect(plain.status == 0, "stderr: \(plain.stderr)")
        #expect(!plain.stdout.contains("chatty-line"))

        let explained = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", policy, "--explain"])
        let printedLines = explained.stdout.split(separator: "\n").filter { $0.contains("chatty-line") }
        #expect(printedLines.count == 3)
        #expect(printedLines.allSatisfy { $0.contains("print:") }, "printed lines appear only as explanation entries")

        let json = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", policy, "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let policies = try #require(document["policies"] as? [[String: Any]])
        #expect(policies.first?["printed"] as? [String] == ["chatty-line-1", "chatty-line-2", "chatty-line-3"])
    }

    @Test func aFailingPolicyRefusesWithFileAndLine() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let policy = try scratch.write("broken-policy.lua", """
            return function(facts)
                local lag = facts.candidate.no_such_field + 1
                return nil
            end
            """)
        let run = try PolicyCLI.run(["eval", "--facts", Shipped.failoverFacts, "--policy", policy])
        #expect(run.status == 1, "a failing policy fails closed: stderr \(run.stderr)")
        #expect(run.stdout.contains("policy:broken-policy"))
        #expect(run.stdout.contains("broken-policy.lua:2"), "stdout: \(run.stdout)")
    }

    @Test(arguments: [[], ["eval"], ["test"], ["check"]])
    func helpShowsExamples(_ command: [String]) throws {
        let run = try PolicyCLI.run(command + ["--help"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("Examples:"))
        #expect(run.stdout.contains("aerodb-policy"))
    }
}
