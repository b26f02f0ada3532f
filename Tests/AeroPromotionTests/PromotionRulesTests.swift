import AeroCore
import AeroPromotion
import Testing
import AeroTestSupport

/// One test (at least) per way each native rule refuses, all starting from a facts document
/// that passes every rule, so each test shows exactly which rules a change trips.
@Suite struct PromotionRulesTests {
    @Test func passingExamplesPassEveryRule() throws {
        for name in ["failover-ok", "switchover-ok"] {
            let results = PromotionRules.evaluate(try exampleFacts(name))
            #expect(results.map(\.id) == PromotionRules.allIDs)
            for result in results {
                #expect(result.passed, "\(name): \(result.id): \(result.message)")
                #expect(result.evaluated)
                #expect(!result.facts.isEmpty, "\(name): \(result.id) reports the facts it read")
            }
        }
    }

    @Test func allIDsAreUniqueAndStable() {
        #expect(PromotionRules.allIDs == ["REQ-1", "LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "FENCE-1"])
        #expect(Set(PromotionRules.allIDs).count == PromotionRules.allIDs.count)
    }

    // MARK: REQ-1

    @Test func req1RefusesAnUnknownKind() throws {
        let facts = try example("failover-ok", [("request.kind", .string("takeover"))])
        #expect(failedRules(facts) == ["REQ-1", "DUR-1", "FENCE-1"])
        #expect(rule("REQ-1", facts).message.contains("request kind \"takeover\" is not known"))
        let dur1 = rule("DUR-1", facts)
        #expect(!dur1.evaluated && dur1.message.contains("see REQ-1"))
        let decision = PromotionEngine(policies: []).decide(facts)
        #expect(decision.reasons.map(\.source) == ["rule:REQ-1"], "skipped rules are not repeated as reasons")
    }

    @Test func req1RefusesAMissingCandidateAndSkipsTheCandidateRules() throws {
        for change: JSONValue? in [nil, .null] {
            let facts = try example("failover-ok", [("request.candidate", change)])
            #expect(failedRules(facts) == ["REQ-1", "LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2"])
            #expect(rule("REQ-1", facts).message == "the request names no candidate")
            for id in ["LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2"] {
                let result = rule(id, facts)
                #expect(!result.evaluated)
                #expect(result.message == "not evaluated: no candidate present in the nodes (see REQ-1)")
                #expect(result.facts.isEmpty)
            }
            #expect(rule("FENCE-1", facts).passed, "FENCE-1 does not need a candidate")
        }
    }

    @Test func req1RefusesACandidateNotAmongTheNodes() throws {
        let facts = try example("failover-ok", [("request.candidate", .string("zz"))])
        #expect(failedRules(facts) == ["REQ-1", "LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2"])
        #expect(rule("REQ-1", facts).message == "candidate \"zz\" is not among the 5 nodes")
        #expect(rule("REQ-1", facts).facts["$.request.candidate"] == .string("zz"))
    }

    // MARK: LIVE-1

    @Test func live1RefusesAnUnreachableCandidate() throws {
        let facts = try example("failover-ok", unreachableChanges(1))
        #expect(failedRules(facts) == ["LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2"])
        #expect(rule("LIVE-1", facts).message == "candidate b was not reachable: nothing it would report is known")
        #expect(rule("WAL-1", facts).message == "not evaluated: candidate b is unreachable (see LIVE-1)")
        #expect(PromotionEngine(policies: []).decide(facts).reasons.map(\.source) == ["rule:LIVE-1"])
    }

    // MARK: ROLE-1

    @Test func role1RefusesTheCurrentPrimaryAsCandidate() throws {
        let facts = try example("switchover-ok", [("request.candidate", .string("a"))])
        #expect(failedRules(facts) == ["ROLE-1"])
        let message = rule("ROLE-1", facts).message
        #expect(message.contains("a is the current primary"))
        #expect(message.contains("a is configured as primary, not replica"))
    }

    @Test func role1RefusesACandidateFollowingAnotherNodeOrNone() throws {
        let other = try example("failover-ok", [("nodes.1.following", .string("c"))])
        #expect(failedRules(other) == ["ROLE-1"])
        #expect(rule("ROLE-1", other).message == "b follows c, not the current primary a")
        let none = try example("failover-ok", [("nodes.1.following", .null)])
        #expect(failedRules(none) == ["ROLE-1"])
        #expect(rule("ROLE-1", none).message == "b follows no node, not the current primary a")
    }

    @Test func role1RefusesACandidateConfiguredAsPrimary() throws {
        let facts = try example("failover-ok", [("nodes.1.role", .string("primary"))])
        #expect(failedRules(facts) == ["ROLE-1", "EPOCH-1"])
        #expect(rule("ROLE-1", facts).message == "b is configured as primary, not replica")
        #expect(rule("EPOCH-1", facts).message.contains("reachable node(s) b claim to be primary"))
    }

    // MARK: EPOCH-1

    @Test func epoch1RefusesACandidateOfAnotherEpoch() throws {
        let facts = try example("failover-ok", [("nodes.1.epoch", .integer(6))])
        #expect(failedRules(facts) == ["EPOCH-1"])
        #expect(rule("EPOCH-1", facts).message == "candidate b is at epoch 6, the cluster at epoch 7")
    }

    @Test func epoch1RefusesWhenANodeReportsAHigherEpoch() throws {
        let facts = try example("failover-ok", [("nodes.2.epoch", .integer(8))])
        #expect(failedRules(facts) == ["EPOCH-1"])
        let result = rule("EPOCH-1", facts)
        #expect(result.message == "reachable node(s) c (epoch 8) report an epoch above the cluster's 7: a promotion already happened or is under way")
        #expect(result.facts["$.nodes[2].epoch"] == .integer(8))
    }

    @Test func epoch1RefusesWhenAnotherNodeClaimsToBePrimary() throws {
        let facts = try example("failover-ok", [("nodes.3.role", .string("primary"))])
        #expect(failedRules(facts) == ["EPOCH-1"])
        #expect(rule("EPOCH-1", facts).message == "reachable node(s) d claim to be primary, but cluster.primary is a: a promotion already happened or is under way")
    }

    @Test func epoch1ListsABoundedNumberOfNodes() throws {
        var json = FactsFixtures.cluster(nodeCount: 20).json
        for index in 2..<20 { json = setting(json, "nodes.\(index).epoch", .integer(8)) }
        let result = rule("EPOCH-1", try FactsDocument(json: json))
        #expect(!result.passed)
        #expect(result.message.contains("n0002 (epoch 8), n0003 (epoch 8), n0004 (epoch 8), n0005 (epoch 8), n0006 (epoch 8) and 13 more"))
        #expect(result.facts["$.nodes[19].epoch"] == .integer(8), "the facts map keeps every node read")
    }

    // MARK: WAL-1

    @Test(arguments: [
        ("nodes.1.wal.continuous", JSONValue.bool(false), "b's WAL has a gap (wal.continuous is false)"),
        ("nodes.1.wal.corrupt", JSONValue.bool(true), "b's WAL failed a checksum (wal.corrupt is true)"),
        ("nodes.1.recovering", JSONValue.bool(true), "b is still recovering"),
    ])
    func wal1RefusesAnUnsoundLog(path: String, value: JSONValue, message: String) throws {
        let facts = try example("failover-ok", [(path, value)])
        #expect(failedRules(facts) == ["WAL-1"])
        #expect(rule("WAL-1", facts).message == message)
    }

    // MARK: DUR-1

    @Test func dur1RefusesAFailoverInAsyncMode() throws {
        let facts = try exampleFacts("failover-async-refused")
        #expect(failedRules(facts) == ["DUR-1"])
        #expect(rule("DUR-1", facts).message.hasPrefix("commit mode is async: the lost primary a may have acknowledged writes that no other node holds"))
        // Even a candidate ahead of every acknowledged position: async acknowledgements are unknowable.
        let ahead = try example("failover-async-refused", [("nodes.1.durable_lsn", .integer(5000))])
        #expect(failedRules(ahead) == ["DUR-1"])
    }

    @Test func dur1RefusesACandidateOutsideSyncReplicas() throws {
        let facts = try example("failover-ok", [("cluster.sync_replicas", .array([.string("c")]))])
        #expect(failedRules(facts) == ["DUR-1"])
        #expect(rule("DUR-1", facts).message == "b is not in sync_replicas: the lost primary a may have acknowledged writes b never stored")
    }

    @Test func dur1RefusesACandidateBelowAnAcknowledgedPosition() throws {
        let facts = try example("failover-ok", [("nodes.3.primary_acked_lsn", .integer(1201))])
        #expect(failedRules(facts) == ["DUR-1"])
        let result = rule("DUR-1", facts)
        #expect(result.message == "b is durable to 1200, but position 1201 was acknowledged ($.nodes[3].primary_acked_lsn): acknowledged writes would be lost")
        #expect(result.facts["$.nodes[3].primary_acked_lsn"] == .integer(1201))
    }

    @Test func dur1PassesAFailoverCitingTheHighestAcknowledgedPosition() throws {
        let result = rule("DUR-1", try exampleFacts("failover-ok"))
        #expect(result.passed)
        #expect(result.message == "sync mode with b in sync_replicas; b is durable to 1200, at or above the highest acknowledged position known, 1198 ($.nodes[1].primary_acked_lsn)")
    }

    @Test func dur1AllowsAndReportsSwitchoverLag() throws {
        let result = rule("DUR-1", try exampleFacts("switchover-ok"))
        #expect(result.passed)
        #expect(result.message.contains("b is durable to 1205, the primary a to 1210 (lag 5)"))
        #expect(result.facts["$.nodes[0].durable_lsn"] == .integer(1210))
        // Lag is not bounded by DUR-1 in a switchover: the plan waits for the final position.
        let far = try example("switchover-ok", [("nodes.1.durable_lsn", .integer(10)), ("nodes.1.applied_lsn", .integer(10))])
        #expect(rule("DUR-1", far).passed)
    }

    @Test func dur1RefusesASwitchoverWhosePrimaryIsUnreachable() throws {
        let facts = try example("switchover-ok", unreachableChanges(0))
        #expect(failedRules(facts) == ["DUR-1", "FENCE-1"])
        #expect(rule("DUR-1", facts).message.contains("the primary a is unreachable (see FENCE-1)"))
    }

    // MARK: DUR-2

    @Test func dur2RefusesACandidateBehindAPeerAndNamesIt() throws {
        let facts = try exampleFacts("failover-behind-peer")
        #expect(failedRules(facts) == ["DUR-2"])
        let result = rule("DUR-2", facts)
        #expect(result.message == "c is ahead of the candidate b: durable to 1250 against 1200; name c as the candidate, or wait until b catches up")
        #expect(result.facts["$.nodes[2].durable_lsn"] == .integer(1250))
    }

    @Test func dur2NamesTheMostAdvancedPeerWithTiesByID() throws {
        let tie = try example("failover-behind-peer", [("nodes.3.durable_lsn", .integer(1250)), ("nodes.3.applied_lsn", .integer(1250))])
        #expect(rule("DUR-2", tie).message.hasPrefix("c is ahead of the candidate b: durable to 1250"))
        #expect(rule("DUR-2", tie).message.hasSuffix("(also ahead: d at 1250)"))
        let beyond = try example("failover-behind-peer", [("nodes.3.durable_lsn", .integer(1300)), ("nodes.3.applied_lsn", .integer(1300))])
        #expect(rule("DUR-2", beyond).message.hasPrefix("d is ahead of the candidate b: durable to 1300"))
    }

    @Test func dur2IgnoresPeersOfOtherEpochsAndTheUnreachable() throws {
        // c is ahead but still at epoch 6: its extra records may be from a superseded history.
        let stale = try example("failover-behind-peer", [("nodes.2.epoch", .integer(6))])
        #expect(rule("DUR-2", stale).passed)
        let gone = try example("failover-behind-peer", unreachableChanges(2))
        #expect(rule("DUR-2", gone).passed)
    }

    @Test func dur2AppliesToSwitchoversToo() throws {
        let facts = try example("switchover-ok", [("nodes.2.durable_lsn", .integer(1207)), ("nodes.2.applied_lsn", .integer(1207))])
        #expect(failedRules(facts) == ["DUR-2"])
    }

    // MARK: FENCE-1

    @Test func fence1RefusesAFailoverWhilePrimaryAnswers() throws {
        let facts = try exampleFacts("failover-primary-reachable")
        #expect(failedRules(facts) == ["FENCE-1"])
        let result = rule("FENCE-1", facts)
        #expect(result.message == "the primary a is reachable, so a failover would leave it accepting writes; request a switchover, which demotes it first")
        #expect(result.facts["$.nodes[0].reachable"] == .bool(true))
    }

    @Test func fence1RefusesASwitchoverWithoutThePrimary() throws {
        let facts = try example("switchover-ok", unreachableChanges(0))
        #expect(rule("FENCE-1", facts).message == "a switchover demotes the primary a first, but it is unreachable; if it is gone, request a failover")
    }

    // MARK: Generated documents

    @Test func generatedClustersPassEveryRule() {
        for count in [2, 5, 1_000] {
            let facts = FactsFixtures.cluster(nodeCount: count)
            #expect(facts.nodes.count == count)
            #expect(failedRules(facts).isEmpty, "\(count) nodes")
            #expect(FactsFixtures.cluster(nodeCount: count).digest == facts.digest, "generation is deterministic")
        }
    }
}
