// PromotionUnusableTests.swift — trips the three PROMOTE-* rules that make a promotion request
// unusable (exit code 2) on real processes: PROMOTE-POLICY-1 (policy_dir empty or missing),
// PROMOTE-FACTS-1 (a member answers a status this build cannot read), PROMOTE-RECORD-1 (the
// decisions directory cannot take the record, at request time or already at start). Each
// checks that nothing changed authority, that the refusal is journaled and counted, and that
// `aerodb promote` exits 2.
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("Promotion requests that cannot be decided (real processes)", .serialized)
struct PromotionUnusableTests {
    /// The answer is "unusable" with `rule`, HTTP `status`, and exit code 2 in the body.
    func expectUnusable(_ reply: PromoCluster.Reply, rule: String, status: Int = 422, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, "\(reply.text)", sourceLocation: sourceLocation)
        #expect(reply.json?["outcome"]?.stringValue == "unusable", "\(reply.text)", sourceLocation: sourceLocation)
        #expect(reply.json?["rule"]?.stringValue == rule, "\(reply.text)", sourceLocation: sourceLocation)
        #expect(reply.json?["exit_code"]?.integerValue == 2, "\(reply.text)", sourceLocation: sourceLocation)
    }

    /// n1 is still primary of epoch 1 and was never fenced; `candidate` is still its replica.
    func expectNothingChanged(_ cluster: PromoCluster, candidate: Int, sourceLocation: SourceLocation = #_sourceLocation) async {
        #expect(await cluster.role(0).map { "\($0.role) \($0.epoch)" } == "primary 1", sourceLocation: sourceLocation)
        #expect(await cluster.role(candidate).map { "\($0.role) \($0.epoch)" } == "replica 1", sourceLocation: sourceLocation)
        #expect(!cluster.journal(0).contains("\"fenced\""), sourceLocation: sourceLocation)
        #expect(!cluster.journal(candidate).contains("\"epoch_promised\""), sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: cluster.root + "/n\(candidate + 1)/promotion-attempt.json"), sourceLocation: sourceLocation)
    }

    func promoteCLI(_ cluster: PromoCluster, _ node: Int, kind: String) throws -> RemoteCommandTests.Run {
        try RemoteCommandTests.aerodb(["promote", "--addr", "127.0.0.1:\(cluster.http[node])", "--kind", kind, "--requested-by", "test-operator"])
    }

    @Test("PROMOTE-POLICY-1: an empty or a missing policy_dir refuses the request as unusable; nothing is decided or changed")
    func policyDirUnusable() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        // A node checks its policy_dir at start (PolicyStartupCheck): both start with a usable
        // one, which then breaks while they run — emptied on n2, removed on n3.
        let empty = cluster.root + "/empty-policies"
        let missing = cluster.root + "/no-such-policies"
        for dir in [empty, missing] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: cluster.policyDir + "/require-requested-by.lua", toPath: dir + "/require-requested-by.lua")
        }
        try cluster.editConfig(1, "policy_dir", .string(empty))
        try cluster.editConfig(2, "policy_dir", .string(missing))
        try cluster.startAll()
        try FileManager.default.removeItem(atPath: empty + "/require-requested-by.lua")
        try FileManager.default.removeItem(atPath: missing)
        #expect(await cluster.put(0, "k", "v").status == 200)

        let dry = await cluster.promote(1, kind: "switchover", dryRun: true)
        expectUnusable(dry, rule: "PROMOTE-POLICY-1")
        #expect(dry.json?["message"]?.stringValue?.contains("\(empty): holds no policy (*.lua)") == true, "\(dry.text)")
        let real = await cluster.promote(1, kind: "switchover")
        expectUnusable(real, rule: "PROMOTE-POLICY-1")
        let other = await cluster.promote(2, kind: "switchover")
        expectUnusable(other, rule: "PROMOTE-POLICY-1")
        #expect(other.json?["message"]?.stringValue?.contains("\(missing): no such file or directory") == true, "\(other.text)")

        let cli = try promoteCLI(cluster, 1, kind: "switchover")
        #expect(cli.status == 2, "\(cli.stdout) \(cli.stderr)")
        #expect(cli.stdout.contains("outcome: unusable (candidate n2)") && cli.stdout.contains("rule: PROMOTE-POLICY-1"), "\(cli.stdout)")

        await expectNothingChanged(cluster, candidate: 1)
        #expect(await cluster.role(2).map { "\($0.role) \($0.epoch)" } == "replica 1")
        #expect(await cluster.put(0, "still", "writable").status == 200)
        // No decision was made, so none is recorded; the refusal is journaled and counted.
        #expect(await cluster.request(1, "GET", "/v1/admin/decisions").json?["decisions"] == .array([]))
        #expect(cluster.journal(1).contains("\"promotion_refused\"") && cluster.journal(1).contains("PROMOTE-POLICY-1"))
        let metrics = await cluster.request(1, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotion_refusals_total{rule=\"PROMOTE-POLICY-1\"} 3"), "\(metrics)")
    }

    @Test("PROMOTE-FACTS-1: a member whose status this build cannot read makes the facts unusable; nothing is guessed or changed")
    func factsUnusable() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        #expect(await cluster.put(0, "k", "v").status == 200)
        // n3 is replaced by a member that answers a status with a role this build does not know
        // (as a node of an incompatible version would).
        cluster.kill9(2)
        let status = #"{"node":{"id":"n3","role":"witness","reachable":true,"epoch":1,"durable_lsn":1,"applied_lsn":1,"acked_lsn":null,"primary_acked_lsn":null,"wal":{"continuous":true,"corrupt":false},"recovering":false,"following":"n1","last_contact_ms":null,"labels":{"zone":"c"}}}"#
        let stub = try StubHTTPServer(port: cluster.http[2], body: status)
        defer { stub.stop() }

        let dry = await cluster.promote(1, kind: "switchover", dryRun: true)
        expectUnusable(dry, rule: "PROMOTE-FACTS-1")
        #expect(dry.json?["message"]?.stringValue?.contains("$.nodes[2].role") == true, "\(dry.text)")
        #expect(dry.json?["message"]?.stringValue?.contains("\"witness\"") == true, "\(dry.text)")
        let real = await cluster.promote(1, kind: "switchover")
        expectUnusable(real, rule: "PROMOTE-FACTS-1")
        let cli = try promoteCLI(cluster, 1, kind: "switchover")
        #expect(cli.status == 2 && cli.stdout.contains("rule: PROMOTE-FACTS-1"), "\(cli.stdout) \(cli.stderr)")
        #expect(stub.requests >= 3, "the member was asked for its status")

        await expectNothingChanged(cluster, candidate: 1)
        #expect(await cluster.request(1, "GET", "/v1/admin/decisions").json?["decisions"] == .array([]))
        #expect(cluster.journal(1).contains("PROMOTE-FACTS-1"))
    }

    @Test("PROMOTE-RECORD-1: a decision that cannot be recorded is not acted on; after the fix the same request promotes")
    func recordFails() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        #expect(await cluster.put(0, "k", "v").status == 200)
        // The decisions directory of n2 is replaced by a file: no record can be written there.
        let decisions = cluster.root + "/n2/decisions"
        try FileManager.default.removeItem(atPath: decisions)
        try Data("not a directory\n".utf8).write(to: URL(fileURLWithPath: decisions))

        let reply = await cluster.promote(1, kind: "switchover")
        expectUnusable(reply, rule: "PROMOTE-RECORD-1")
        #expect(reply.json?["message"]?.stringValue?.contains("the decision could not be recorded, so it is not acted on") == true, "\(reply.text)")
        #expect(reply.json?["decision_id"] == nil)
        let cli = try promoteCLI(cluster, 1, kind: "switchover")
        #expect(cli.status == 2 && cli.stdout.contains("rule: PROMOTE-RECORD-1"), "\(cli.stdout) \(cli.stderr)")
        await expectNothingChanged(cluster, candidate: 1)
        #expect(await cluster.put(0, "still", "writable").status == 200)
        let metrics = await cluster.request(1, "GET", "/metrics").text
        #expect(metrics.contains("aerodb_promotion_refusals_total{rule=\"PROMOTE-RECORD-1\"} 2"), "\(metrics)")

        // The operator fixes the named input; the request is then decided, recorded and acted on.
        try FileManager.default.removeItem(atPath: decisions)
        try FileManager.default.createDirectory(atPath: decisions, withIntermediateDirectories: false)
        let again = await cluster.promote(1, kind: "switchover")
        #expect(again.json?["outcome"]?.stringValue == "promoted", "\(again.text)")
        #expect(await cluster.request(1, "GET", "/v1/admin/decisions").json?["decisions"]?.arrayValue?.count == 1)
    }

    @Test("PROMOTE-RECORD-1 at start: a node whose data dir cannot hold decisions answers every promotion unusable")
    func recordUnavailableAtStart() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        cluster.kill9(2)
        let decisions = cluster.root + "/n3/decisions"
        try FileManager.default.removeItem(atPath: decisions)
        try Data("not a directory\n".utf8).write(to: URL(fileURLWithPath: decisions))
        try cluster.start(2)

        let reply = await cluster.promote(2, kind: "switchover")
        expectUnusable(reply, rule: "PROMOTE-RECORD-1", status: 500)
        #expect(reply.json?["message"]?.stringValue?.contains("the decision log is unavailable") == true, "\(reply.text)")
        let cli = try promoteCLI(cluster, 2, kind: "switchover")
        #expect(cli.status == 2 && cli.stdout.contains("rule: PROMOTE-RECORD-1"), "\(cli.stdout) \(cli.stderr)")
        await expectNothingChanged(cluster, candidate: 2)
        #expect(cluster.journal(2).contains("\"admin_refused\""))
    }
}
