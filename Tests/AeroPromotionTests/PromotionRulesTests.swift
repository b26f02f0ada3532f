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
        #expect(PromotionRules.allIDs == ["REQ-1", "LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "DUR-3", "POLICY-1", "FENCE-1"])
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
            #expect(failedRules(facts) == ["REQ-1", "LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "DUR-3"])
            #expect(rule("REQ-1", facts).message == "the request names no candidate")
            for id in ["LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "DUR-3"] {
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
        #expect(failedRules(facts) == ["REQ-1", "LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "DUR-3"])
        #expect(rule("REQ-1", facts).message == "candidate \"zz\" is not among the 5 nodes")
        #expect(rule("REQ-1", facts).facts["$.request.candidate"] == .string("zz"))
    }

    // MARK: LIVE-1

    @Test func live1RefusesAnUnreachableCandidate() throws {
        let facts = try example("failover-ok", unreachableChanges(1))
        #expect(failedRules(facts) == ["LIVE-1", "ROLE-1", "EPOCH-1", "WAL-1", "DUR-1", "DUR-2", "DUR-3"])
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

    /// A dry run right after start: the candidate has not heard from its primary yet. The
    /// refusal says so, not "a promotion already happened" (issue 17, the false alarm).
    @Test func epoch1SaysAFreshCandidateHasNotHeardFromItsPrimary() throws {
        let facts = try example("failover-ok", [("cluster.epoch", .integer(0)), ("nodes.1.epoch", .integer(0)), ("nodes.1.last_contact_ms", .null)])
        let result = rule("EPOCH-1", facts)
        #expect(!result.passed)
        #expect(result.message == "candidate b is at epoch 0: it has not yet heard from any primary (a node that just started); ask again once it follows its primary (`aerodb status` on it shows its epoch and last_contact_ms)")
        #expect(!result.message.contains("a promotion already happened"))
        #expect(result.facts["$.nodes[1].last_contact_ms"] == .null)
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
        #expect(rule("DUR-1", facts).message.hasPrefix("epoch 7 runs in async mode: its primary a acknowledged writes that no other node may hold, so no failover can be proven safe"))
        // Even a candidate ahead of every acknowledged position: async acknowledgements are unknowable.
        let ahead = try example("failover-async-refused", [("nodes.1.durable_lsn", .integer(5000))])
        #expect(failedRules(ahead) == ["DUR-1"])
    }

    @Test func dur1AdmitsACandidateOutsideTheSetWhenWitnessesSuffice() throws {
        // The set is {c} (quorum 1): c holds every acknowledged write, and b is at or above c.
        let facts = try example("failover-ok", [("cluster.sync_replicas", .array([.string("a"), .string("c")]))])
        #expect(rule("DUR-1", facts).passed, "\(rule("DUR-1", facts).message)")
        #expect(rule("DUR-1", facts).message.hasSuffix("1 of ANY 1 (c) reported (1 needed, so one of them holds every acknowledged write) and b is at or above each"))
    }

    @Test func dur1RefusesWhenTooFewOfTheSetReport() throws {
        // ANY 1 of {b, c}: a write may be on c alone, so c must report.
        let facts = try example("failover-ok", [("cluster.sync_quorum", .integer(1))] + unreachableChanges(2))
        #expect(failedRules(facts) == ["DUR-1"])
        #expect(rule("DUR-1", facts).message == "epoch 7 acknowledges with ANY 1 (b, c): only 1 of them reported at epoch 7 (b), but 2 must, so that one of them surely holds every acknowledged write; not reporting: c (unreachable); bring one of them back, then ask again")
        // A member of the set at an older epoch never acknowledged in this one, but counts as not reporting.
        let stale = try example("failover-ok", [("cluster.sync_quorum", .integer(1)), ("nodes.2.epoch", .integer(6))])
        #expect(rule("DUR-1", stale).message.contains("not reporting: c (at epoch 6, not 7)"))
        // Quorum 2 of {b, c} (all): either one holds every acknowledged write.
        #expect(rule("DUR-1", try example("failover-ok", unreachableChanges(2))).passed)
    }

    @Test func dur1RefusesACandidateBehindAMemberOfTheSetAndNamesIt() throws {
        let facts = try example("failover-ok", [("cluster.sync_quorum", .integer(1)), ("nodes.2.durable_lsn", .integer(1201)), ("nodes.2.applied_lsn", .integer(1201))])
        #expect(failedRules(facts) == ["DUR-1", "DUR-2"])
        #expect(rule("DUR-1", facts).message == "c, of epoch 7's set ANY 1 (b, c), is durable to 1201, ahead of b at 1200: it may hold acknowledged writes b lacks; name c as the candidate")
        // The named candidate passes every rule: no dead end.
        let named = try example("failover-ok", [("cluster.sync_quorum", .integer(1)), ("nodes.2.durable_lsn", .integer(1201)), ("nodes.2.applied_lsn", .integer(1201)),
                                                ("request.candidate", .string("c"))])
        #expect(failedRules(named).isEmpty, "\(failedRules(named))")
    }

    @Test func dur1RefusesACandidateBelowTheEpochsStart() throws {
        let facts = try example("failover-ok", [("cluster.epoch_start_lsn", .integer(1202))])
        #expect(failedRules(facts) == ["DUR-1"])
        #expect(rule("DUR-1", facts).message == "b is durable to 1200, below the end of the log before epoch 7 began (1201): it lacks records acknowledged in earlier epochs; name a node durable to at least 1201")
        #expect(rule("DUR-1", try example("failover-ok", [("cluster.epoch_start_lsn", .integer(1201))])).passed)
    }

    @Test func dur1RefusesACandidateBelowAnAcknowledgedPosition() throws {
        let facts = try example("failover-ok", [("nodes.3.primary_acked_lsn", .integer(1201))])
        #expect(failedRules(facts) == ["DUR-1"])
        let result = rule("DUR-1", facts)
        #expect(result.message == "b is durable to 1200, but position 1201 was acknowledged ($.nodes[3].primary_acked_lsn): acknowledged writes would be lost; name a node durable to at least 1201")
        #expect(result.facts["$.nodes[3].primary_acked_lsn"] == .integer(1201))
    }

    @Test func dur1PassesAFailoverCitingTheHighestAcknowledgedPosition() throws {
        let result = rule("DUR-1", try exampleFacts("failover-ok"))
        #expect(result.passed)
        #expect(result.message == "b is durable to 1200, at or above the highest acknowledged position known, 1198 ($.nodes[1].primary_acked_lsn); 2 of ANY 2 (b, c) reported (1 needed, so one of them holds every acknowledged write) and b is at or above each")
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
        // c is also in the epoch's set, so DUR-1 names it too.
        #expect(failedRules(facts) == ["DUR-1", "DUR-2"])
        let result = rule("DUR-2", facts)
        #expect(result.message == "c is ahead of the candidate b: durable to 1250 against 1200; promoting b would leave records c holds on no primary (c would need a re-seed); name c as the candidate, which holds every record a reachable replica holds")
        // d is not in the set: ahead of b, it is DUR-2's alone.
        let async = try example("failover-behind-peer", [("nodes.2.durable_lsn", .integer(1199)), ("nodes.2.applied_lsn", .integer(1199)),
                                                         ("nodes.3.durable_lsn", .integer(1230)), ("nodes.3.applied_lsn", .integer(1230))])
        #expect(failedRules(async) == ["DUR-2"])
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

    @Test func dur2PassesSwitchoversWhichCatchUpToThePrimary() throws {
        // The switchover candidate catches up to the fenced primary's final position, which is
        // at or above every replica's: a replica ahead of it now loses nothing.
        let facts = try example("switchover-ok", [("nodes.2.durable_lsn", .integer(1207)), ("nodes.2.applied_lsn", .integer(1207))])
        #expect(failedRules(facts).isEmpty)
        #expect(rule("DUR-2", facts).message.hasPrefix("switchover: b catches up to the fenced primary's final position"))
    }

    // MARK: DUR-3

    @Test func dur3RefusesACandidateThatLeavesTheNewEpochNoAcknowledger() throws {
        // sync_replicas [b]: with b as primary no member could acknowledge in epoch 8.
        let facts = try example("failover-ok", [("cluster.sync_replicas", .array([.string("b")]))])
        #expect(failedRules(facts).contains("DUR-3"))
        #expect(rule("DUR-3", facts).message.hasPrefix("epoch 8 would have no durability: with b as primary, sync_replicas [b] leaves no other member to acknowledge writes"))
        let tooMany = try example("failover-ok", [("cluster.sync_replicas", .array([.string("a"), .string("b"), .string("c")])), ("cluster.sync_quorum", .integer(3))])
        #expect(rule("DUR-3", tooMany).message.contains("sync_quorum 3 is more than the 2 member(s) that can acknowledge (a, c)"))
    }

    @Test func dur3PassesAndSaysWhetherTheNewQuorumCanBeMetNow() throws {
        let facts = try example("failover-ok", [("cluster.sync_replicas", .array([.string("a"), .string("b"), .string("c")])), ("cluster.sync_quorum", .integer(1))])
        let result = rule("DUR-3", facts)
        #expect(result.passed)
        #expect(result.message == "epoch 8 will acknowledge with ANY 1 (a, c) (1 of them reachable now)")
        let twoNode = try example("failover-ok", [("cluster.sync_replicas", .array([.string("a"), .string("b")])), ("cluster.sync_quorum", .integer(1))])
        #expect(rule("DUR-3", twoNode).message == "epoch 8 will acknowledge with ANY 1 (a) (only 0 of them reachable now, so writes are refused (REPL-QUORUM-1) until 1 more rejoin)")
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
