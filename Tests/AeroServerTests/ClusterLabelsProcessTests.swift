// ClusterLabelsProcessTests.swift — cluster labels are replicated cluster state (issue 11):
// `aerodb cluster labels set|unset|list` on real processes; a replica refuses a label write
// like any write; the labels reach the replicas, survive a failover and a restart, are the
// facts' cluster.labels (the shipped change-freeze policy refuses through them), and a label
// changed between a dry run and the real run is PROMOTE-DIGEST-1 naming it. Client keys cannot
// reach the reserved namespace.
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("Cluster labels (real processes)", .serialized)
struct ClusterLabelsProcessTests {
    /// Runs `aerodb ARGS`; exit status and standard output, standard error.
    static func aerodb(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let run = try ProcessRun.run(builtExecutable("aerodb"), arguments)
        return (run.status, run.stdout, run.stderr)
    }

    static func addr(_ cluster: PromoCluster, _ index: Int) -> String { "127.0.0.1:\(cluster.http[index])" }

    static func labels(_ cluster: PromoCluster, _ index: Int) async -> JSONValue? {
        await cluster.request(index, "GET", "/v1/cluster/labels", timeoutMs: 2_000).json?["labels"]
    }

    @Test("set/unset/list through the CLI; replicated; a replica refuses; change-freeze trips live; kept across failover and restart")
    func labelsAreReplicatedState() async throws {
        let cluster = try PromoCluster(policies: ["require-requested-by", "change-freeze"])
        defer { cluster.stopAll() }
        try cluster.startAll()

        let set = try Self.aerodb(["cluster", "labels", "set", "change-freeze=release 4.2 until friday", "owner=dba", "--addr", Self.addr(cluster, 0)])
        #expect(set.status == 0, "\(set.err)")
        #expect(set.out.contains("change-freeze set (lsn "))
        // A replica refuses a label write like any write.
        let onReplica = try Self.aerodb(["cluster", "labels", "set", "owner=someone", "--addr", Self.addr(cluster, 1)])
        #expect(onReplica.status == 1)
        #expect(onReplica.err.contains("REPL-WRITE-ON-REPLICA"), "\(onReplica.err)")
        // Bad input is a usage error naming the label, before anything is written.
        let bad = try Self.aerodb(["cluster", "labels", "set", "Bad Name=x", "--addr", Self.addr(cluster, 0)])
        #expect(bad.status != 0 && bad.err.contains("label name \"Bad Name\""), "\(bad.err)")
        let badValue = await cluster.request(0, "PUT", "/v1/cluster/labels/owner", body: "tab\there")
        #expect(badValue.status == 400 && badValue.text.contains("control character U+9"), "\(badValue.text)")

        // Replicated: both replicas apply it (sync writes: acknowledged by both).
        for node in 1..<3 {
            let list = try Self.aerodb(["cluster", "labels", "list", "--addr", Self.addr(cluster, node)])
            #expect(list.status == 0)
            #expect(list.out == "change-freeze=release 4.2 until friday\nowner=dba\n", "n\(node + 1): \(list.out)")
        }

        // The facts carry them; the shipped change-freeze policy refuses through them.
        let frozen = await cluster.promote(1, kind: "switchover", dryRun: true)
        #expect(frozen.json?["outcome"]?.stringValue == "refused", "\(frozen.text)")
        let sources = frozen.json?["decision"]?["reasons"]?.arrayValue?.compactMap { $0["source"]?.stringValue } ?? []
        #expect(sources == ["policy:change-freeze"], "\(sources)")
        #expect(frozen.text.contains("release 4.2 until friday"))
        let id = try #require(frozen.json?["decision_id"]?.stringValue)
        let facts = try Self.aerodb(["decisions", "show", id, "--facts", "--addr", Self.addr(cluster, 1)])
        let document = try JSONParser.parse(facts.out)
        #expect(document["cluster"]?["labels"]?["owner"] == .string("dba"))
        #expect(document["cluster"]?["name"] == .string("local"))

        // A label changed between the dry run and the real run: PROMOTE-DIGEST-1 names it.
        let unset = try Self.aerodb(["cluster", "labels", "unset", "change-freeze", "nothing-here", "--addr", Self.addr(cluster, 0)])
        #expect(unset.status == 0, "\(unset.err)")
        #expect(unset.out.contains("change-freeze removed") && unset.out.contains("nothing-here was not set"), "\(unset.out)")
        let thawed = await cluster.promote(1, kind: "switchover", dryRun: true)
        #expect(thawed.json?["outcome"]?.stringValue == "allowed", "\(thawed.text)")
        let digest = try #require(thawed.json?["facts_digest"]?.stringValue)
        #expect(try Self.aerodb(["cluster", "labels", "set", "owner=sre", "--addr", Self.addr(cluster, 0)]).status == 0)
        let changed = await cluster.promote(1, kind: "switchover", expectDigest: digest)
        #expect(changed.json?["rule"]?.stringValue == "PROMOTE-DIGEST-1", "\(changed.text)")
        #expect(changed.json?["message"]?.stringValue?.contains(#"cluster.labels.owner: "dba" -> "sre""#) == true, "\(changed.text)")

        // Survives a failover: n1 dies, n2 takes over with the labels it applied.
        cluster.kill9(0)
        let (candidate, promoted) = await cluster.failOverAsOperator()
        #expect(promoted.json?["outcome"]?.stringValue?.hasPrefix("promoted") == true, "\(promoted.text)")
        #expect(await Self.labels(cluster, candidate) == .object(["owner": .string("sre")]))
        // And a restart of the old primary: it recovers them from its own log.
        try cluster.start(0)
        #expect(await Self.labels(cluster, 0)?["owner"] == .string("sre"))
    }

    @Test("client keys cannot address the reserved namespace: get, put, delete, txn, listing")
    func reservedNamespace() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        #expect(await cluster.request(0, "PUT", "/v1/cluster/labels/tier", body: "gold").status == 200)
        let reserved = "%00cluster%2Flabels%2Ftier"
        for (method, body) in [("GET", nil), ("PUT", "x"), ("DELETE", nil)] as [(String, String?)] {
            let reply = await cluster.request(0, method, "/v1/kv/\(reserved)", body: body)
            #expect(reply.status == 400 && PromoCluster.errorCode(reply) == "REQ-INVALID-KEY", "\(method): \(reply.text)")
        }
        let txn = await cluster.request(0, "POST", "/v1/txn", body: #"{"ops":[{"op":"put","key":"\u0000cluster/labels/tier","value":"x"}]}"#)
        #expect(txn.status == 400 && txn.text.contains("reserved"), "\(txn.text)")
        #expect(await cluster.put(0, "a", "1").status == 200)
        let listing = await cluster.request(0, "GET", "/v1/kv")
        #expect(listing.json?["entries"]?.arrayValue?.compactMap { $0["key"]?.stringValue } == ["a"], "\(listing.text)")
        #expect(await Self.labels(cluster, 0) == .object(["tier": .string("gold")]))
    }
}
