import AeroCore
import AeroPolicy
import AeroPromotion
import Testing

func policy(_ name: String, _ body: String) -> PolicySource {
    PolicySource(name: name, path: "policies/\(name).lua", text: "return function(facts)\n\(body)\nend\n")
}

let noObjection = policy("no-objection", "  return nil")
let freeze = policy("freeze", "  return 'change freeze in effect'")
let twoReasons = policy("two-reasons", "  return {'first reason', 'second reason'}")
let broken = policy("broken", "  error('boom')")

@Suite struct PromotionEngineTests {
    @Test func examplesDecideAsNamed() throws {
        let engine = PromotionEngine(policies: [])
        let expected: [(String, Bool, [String])] = [
            ("failover-ok", true, []),
            ("switchover-ok", true, []),
            ("failover-async-refused", false, ["rule:DUR-1"]),
            ("failover-behind-peer", false, ["rule:DUR-1", "rule:DUR-2"]),
            ("failover-primary-reachable", false, ["rule:FENCE-1"]),
        ]
        for (name, allowed, sources) in expected {
            let decision = engine.decide(try exampleFacts(name))
            #expect(decision.allowed == allowed, "\(name)")
            #expect(decision.reasons.map(\.source) == sources, "\(name)")
        }
    }

    @Test func policiesRunAndAreReportedEvenAfterANativeRefusal() throws {
        let engine = PromotionEngine(policies: [noObjection, freeze])
        let decision = engine.decide(try exampleFacts("failover-behind-peer"))
        #expect(!decision.allowed)
        #expect(decision.policies.map(\.name) == ["freeze", "no-objection"])
        #expect(decision.policies.map(\.outcome) == [.refused(["change freeze in effect"]), .noObjection])
        #expect(decision.reasons.map(\.source) == ["rule:DUR-1", "rule:DUR-2", "policy:freeze"], "native reasons first")
    }

    @Test func aPolicyCanRefuseWhatTheRulesAllow() throws {
        let facts = try exampleFacts("failover-ok")
        #expect(PromotionEngine(policies: [noObjection]).decide(facts).allowed)
        let refused = PromotionEngine(policies: [twoReasons, noObjection]).decide(facts)
        #expect(!refused.allowed)
        #expect(refused.rules.allSatisfy { $0.passed }, "native rules are reported when a policy refuses")
        #expect(refused.reasons == [
            Reason(source: "policy:two-reasons", message: "first reason"),
            Reason(source: "policy:two-reasons", message: "second reason"),
        ])
    }

    @Test func aFailingPolicyRefusesAndSaysWhy() throws {
        let decision = PromotionEngine(policies: [broken]).decide(try exampleFacts("failover-ok"))
        #expect(!decision.allowed)
        guard case .failed(let kind, _) = decision.policies[0].outcome else {
            Issue.record("a policy raising an error must fail, got \(decision.policies[0].outcome)")
            return
        }
        #expect(kind == .runtime)
        #expect(decision.reasons.count == 1)
        #expect(decision.reasons[0].source == "policy:broken")
        #expect(decision.reasons[0].message.hasPrefix("policy failed (runtime): "))
        let json = decision.json["policies"]?.arrayValue?[0]
        #expect(json?["outcome"] == .string("failed"))
        #expect(json?["failure"]?["kind"] == .string("runtime"))
    }

    @Test func explanationJSONHasExactlyTheDocumentedShape() throws {
        let facts = try exampleFacts("failover-behind-peer")
        let decision = PromotionEngine(policies: [freeze, noObjection]).decide(facts)
        let json = decision.json
        #expect(Set(json.objectValue!.keys) == ["decision", "reasons", "rules", "policies", "facts_digest", "document_digest", "policy_set_digest", "engine_version"])
        #expect(json["decision"] == .string("refuse"))
        #expect(json["document_digest"] == .string(facts.digest))
        #expect(json["facts_digest"] == .string(DecisionDigest.digest(DecisionDigest.basis(facts, decision))))
        #expect(json["facts_digest"] != json["document_digest"], "two digests, two names")
        #expect(json["engine_version"] == .string(AeroVersion.string))
        #expect(json["reasons"]?.arrayValue?[1] == .object(["source": .string("rule:DUR-2"), "message": .string(decision.rules[6].message)]))
        let rules = try #require(json["rules"]?.arrayValue)
        #expect(rules.map { $0["id"]!.stringValue! } == PromotionRules.allIDs)
        for rule in rules { #expect(Set(rule.objectValue!.keys) == ["id", "passed", "message", "facts"]) }
        let policies = try #require(json["policies"]?.arrayValue)
        #expect(Set(policies[1].objectValue!.keys) == ["name", "outcome", "reasons", "instructions_used", "memory_bytes_peak", "printed"])
        #expect(policies[0]["outcome"] == .string("refused"))
        #expect(policies[0]["reasons"] == .array([.string("change freeze in effect")]))
        #expect(policies[1]["outcome"] == .string("no_objection"))
        #expect(PromotionEngine(policies: []).decide(try exampleFacts("failover-ok")).json["decision"] == .string("allow"))
    }

    @Test func nativeDecisionsAreDeterministicAcrossParses() throws {
        let engine = PromotionEngine(policies: [])
        for name in ["failover-ok", "failover-behind-peer", "switchover-ok"] {
            // Each parse builds its dictionaries afresh, so iteration orders differ between them.
            let a = engine.decide(try exampleFacts(name))
            let b = engine.decide(try FactsDocument.parse(try exampleFacts(name).json.prettyJSON))
            #expect(a == b)
            #expect(a.json.canonicalJSON == b.json.canonicalJSON)
            #expect(a.explainText == b.explainText)
        }
    }

    /// Also checks the sandbox: its reported budget use (memory_bytes_peak) must not depend on
    /// the iteration order of the facts' dictionaries, which differs between two parses.
    @Test func printedLinesGoIntoTheExplanationWithACutMarked() throws {
        let facts = try exampleFacts("failover-ok")
        let chatty = policy("chatty", "  print('candidate', facts.request.candidate)\n  return nil")
        let flood = policy("flood", "  for i = 1, 10000 do print('line', i) end\n  return nil")
        let decision = PromotionEngine(policies: [chatty, flood]).decide(facts)
        #expect(decision.allowed, "printing is not objecting")
        let runs = try #require(decision.json["policies"]?.arrayValue)
        #expect(runs[0]["printed"] == .array([.string("candidate\tb")]))
        #expect(decision.policies[1].printedTruncated)
        let printed = try #require(runs[1]["printed"]?.arrayValue)
        #expect(printed.last == .string(Decision.printedTruncatedMarker))
        #expect(printed.count == decision.policies[1].printed.count + 1)
        #expect(decision.explainText.contains("      print: candidate\tb"))
        #expect(decision.explainText.contains("      print: (truncated)"))
    }

    @Test func decisionsAreDeterministic() throws {
        let facts = try exampleFacts("failover-ok")
        let a = PromotionEngine(policies: [freeze, noObjection, twoReasons, broken]).decide(facts)
        let b = PromotionEngine(policies: [broken, twoReasons, noObjection, freeze]).decide(try exampleFacts("failover-ok"))
        #expect(a == b)
        #expect(a.json.canonicalJSON == b.json.canonicalJSON)
        #expect(a.explainText == b.explainText)
        #expect(a.reasons.map(\.source) == ["policy:broken", "policy:freeze", "policy:two-reasons", "policy:two-reasons"])
        let big = FactsFixtures.cluster(nodeCount: 1_000)
        let engine = PromotionEngine(policies: [noObjection])
        #expect(engine.decide(big).json.canonicalJSON == engine.decide(big).json.canonicalJSON)
    }

    @Test func policySetDigestIdentifiesTheTextsNotTheOrderOrPaths() {
        let digest = PromotionEngine.policySetDigest([freeze, noObjection])
        #expect(digest == PromotionEngine.policySetDigest([noObjection, freeze]))
        #expect(digest == PromotionEngine(policies: [noObjection, freeze]).policySetDigest)
        let moved = PolicySource(name: freeze.name, path: "/elsewhere/freeze.lua", text: freeze.text)
        #expect(digest == PromotionEngine.policySetDigest([moved, noObjection]))
        let edited = PolicySource(name: freeze.name, path: freeze.path, text: freeze.text + "-- edited\n")
        #expect(digest != PromotionEngine.policySetDigest([edited, noObjection]))
        let renamed = PolicySource(name: "freeze2", path: freeze.path, text: freeze.text)
        #expect(digest != PromotionEngine.policySetDigest([renamed, noObjection]))
        // The empty set: the digest of "[]".
        #expect(PromotionEngine.policySetDigest([]) == Digest.sha256Hex("[]".utf8))
    }

    @Test func textsLeadWithTheDecision() throws {
        let refused = PromotionEngine(policies: [freeze]).decide(try exampleFacts("failover-behind-peer"))
        let lines = refused.text.split(separator: "\n")
        #expect(lines[0] == "REFUSED: 3 reason(s)")
        #expect(lines[1].hasPrefix("  rule:DUR-1: c, of epoch 7's set ANY 2 (b, c), is durable to 1250"))
        #expect(lines[2].hasPrefix("  rule:DUR-2: c is ahead of the candidate b"))
        #expect(lines[3] == "  policy:freeze: change freeze in effect")
        let explained = refused.explainText
        #expect(explained.hasPrefix(refused.text))
        #expect(explained.contains("  [FAIL] DUR-2: "))
        #expect(explained.contains("      $.nodes[2].durable_lsn = 1250"))
        #expect(explained.contains("  [freeze] REFUSED: change freeze in effect"))
        #expect(explained.contains("facts digest:      \(refused.factsDigest)  (approve with --expect-facts-digest)"))
        #expect(explained.contains("document digest:   \(refused.documentDigest)"))
        let skipped = PromotionEngine(policies: []).decide(try example("failover-ok", [("request.candidate", nil)]))
        #expect(skipped.explainText.contains("  [skip] WAL-1: not evaluated"))
        #expect(PromotionEngine(policies: []).decide(try exampleFacts("failover-ok")).text.hasPrefix("ALLOWED"))
    }
}
