// LiveFactsProcessTests.swift — a live cluster of real processes reports measured node facts
// (issue 11): a primary's acked_lsn stops short of its durable LSN when a write was not
// acknowledged, a replica's primary_acked_lsn follows the primary's heartbeats and its
// last_contact_ms grows once the primary is gone; and the compare-and-swap digest of a dry run
// survives continuous writes but not a member dying (PROMOTE-DIGEST-1 naming it); a replica
// reconnecting behind the primary reports recovering until it caught up.
import AeroCore
import AeroTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Live facts (real processes)", .serialized)
struct LiveFactsProcessTests {
    /// How long a test waits for a replica to hear what the primary did (heartbeats every 20 ms).
    static let settleMs = 5_000

    static func node(_ cluster: PromoCluster, _ index: Int) async -> JSONValue? {
        await cluster.request(index, "GET", "/v1/status", timeoutMs: 2_000).json?["node"]
    }

    /// Polls node `index`'s status (bounded by `settleMs`) until `holds`; the last status seen.
    static func poll(_ cluster: PromoCluster, _ index: Int, until holds: (JSONValue) -> Bool) async -> JSONValue? {
        var last: JSONValue?
        _ = await Deadline.waitUntil(timeoutMs: settleMs, pollMs: 20) {
            last = await node(cluster, index)
            return last.map(holds) ?? false
        }
        return last
    }

    @Test("acked_lsn, primary_acked_lsn, last_contact_ms, wal, recovering: what the live processes measured")
    func everyFieldLive() async throws {
        let cluster = try PromoCluster(syncTimeoutMs: 2_000)
        defer { cluster.stopAll() }
        try cluster.startAll()
        var lastLSN: Int64 = 0
        for i in 0..<5 {
            let reply = await cluster.put(0, "k\(i)", "v\(i)")
            #expect(reply.status == 200, "\(reply.text)")
            lastLSN = reply.json?["lsn"]?.integerValue ?? 0
        }
        let primary = try #require(await Self.node(cluster, 0))
        #expect(primary["acked_lsn"]?.integerValue == lastLSN, "\(primary.canonicalJSON)")
        #expect(primary["primary_acked_lsn"] == .null && primary["last_contact_ms"] == .null)

        // The replica hears the primary's acknowledged position from its heartbeats.
        let heard = try #require(await Self.poll(cluster, 1) { $0["primary_acked_lsn"]?.integerValue == lastLSN })
        #expect(heard["primary_acked_lsn"]?.integerValue == lastLSN, "\(heard.canonicalJSON)")
        #expect(heard["acked_lsn"] == .null)
        #expect((heard["last_contact_ms"]?.integerValue ?? Int64.max) < 2_000, "\(heard.canonicalJSON)")
        #expect(heard["recovering"] == .bool(false) && heard["wal"]?["continuous"] == .bool(true))
        #expect(heard["following"] == .string("n1"))

        // n3 stops acknowledging: the next write is durable on n1 but not acknowledged (sync set {n2, n3}).
        let n3 = try #require(cluster.nodes[2])
        kill(n3.process.processIdentifier, SIGSTOP)
        let timedOut = await cluster.put(0, "late", "v")
        kill(n3.process.processIdentifier, SIGCONT)
        #expect(PromoCluster.errorCode(timedOut) == "REPL-SYNC-TIMEOUT", "\(timedOut.text)")
        let after = try #require(await Self.node(cluster, 0))
        let durable = after["durable_lsn"]?.integerValue ?? 0
        #expect(durable > lastLSN, "the refused write is durable on n1: \(after.canonicalJSON)")
        #expect(after["acked_lsn"]?.integerValue == lastLSN, "but was not acknowledged: \(after.canonicalJSON)")

        // The primary is gone: the replica's time since contact grows, measured, not guessed.
        cluster.kill9(0)
        let silent = try #require(await Self.poll(cluster, 1) { ($0["last_contact_ms"]?.integerValue ?? 0) >= 300 })
        let first = silent["last_contact_ms"]?.integerValue ?? 0
        #expect(first >= 300, "\(silent.canonicalJSON)")
        try await Task.sleep(for: .milliseconds(200))
        let later = try #require(await Self.node(cluster, 1))
        #expect((later["last_contact_ms"]?.integerValue ?? 0) >= first + 150, "\(later.canonicalJSON)")
    }

    @Test("no false alarm at start: a replica that has not heard from its primary reports epoch 0 and no contact, and a dry run on it says exactly that")
    func freshReplicaIsJudgedOnTrueFacts() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        // n1, the initial primary, is not started yet: n2 and n3 have heard from no one.
        try cluster.start(1)
        try cluster.start(2)
        let node = try #require(await Self.node(cluster, 1))
        #expect(node["epoch"] == .integer(0) && node["last_contact_ms"] == .null, "\(node)")
        let dry = await cluster.promote(1, kind: "switchover", dryRun: true)
        let reasons = (dry.json?["decision"]?["reasons"]?.arrayValue ?? []).compactMap { $0["message"]?.stringValue }
        #expect(reasons.contains { $0.contains("candidate n2 is at epoch 0: it has not yet heard from any primary") }, "\(dry.text)")
        #expect(!reasons.contains { $0.contains("a promotion already happened") }, "a false alarm: \(reasons)")
    }

    @Test("recovering: a replica that reconnects behind the primary's position at connect says so until it caught up")
    func recoveringLive() async throws {
        let cluster = try PromoCluster(syncTimeoutMs: 150, proxyPrimary: true)
        defer { cluster.stopAll() }
        try cluster.startAll()
        #expect(await cluster.put(0, "k", "v").status == 200)
        // n1's replication link goes silent; n1 goes on writing (durable there only).
        let link = cluster.primaryProxies[1]
        link.partition(.blackhole)
        for i in 0..<10 { _ = await cluster.put(0, "behind\(i)", "v") }
        let primaryDurable = try #require(await Self.node(cluster, 0)?["durable_lsn"]?.integerValue)
        // The link comes back slow: each chunk waits, so between the primary's hello (its
        // position at connect) and the records that reach it, the replica is recovering.
        link.setDelay(ms: 400)
        link.heal()
        let recovering = await Self.poll(cluster, 1) { $0["recovering"] == .bool(true) }
        #expect(recovering?["recovering"] == .bool(true), "\(recovering?.canonicalJSON ?? "no answer")")
        #expect((recovering?["durable_lsn"]?.integerValue ?? Int64.max) < primaryDurable)
        link.setDelay(ms: 0)
        let caughtUp = await Self.poll(cluster, 1) {
            $0["recovering"] == .bool(false) && ($0["durable_lsn"]?.integerValue ?? 0) >= primaryDurable
        }
        #expect(caughtUp?["recovering"] == .bool(false), "\(caughtUp?.canonicalJSON ?? "no answer")")
        #expect((caughtUp?["durable_lsn"]?.integerValue ?? 0) >= primaryDurable)
    }

    @Test("compare-and-swap under continuous writes: the dry run's digest lets the real run through")
    func digestUnderWrites() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let writing = NIOLockedBox(true)
        let acked = NIOLockedBox(0)
        let writer = Task {
            var i = 0
            while writing.get() {
                if await cluster.put(0, "w\(i)", "v").status == 200 { acked.set(acked.get() + 1) }
                i += 1
            }
        }
        // Writes flow before and between the two requests.
        while acked.get() < 20 { try await Task.sleep(for: .milliseconds(10)) }
        let dry = await cluster.promote(1, kind: "switchover", dryRun: true)
        #expect(dry.json?["outcome"]?.stringValue == "allowed", "\(dry.text)")
        let digest = try #require(dry.json?["facts_digest"]?.stringValue)
        let before = acked.get()
        while acked.get() < before + 20 { try await Task.sleep(for: .milliseconds(10)) }
        let done = await cluster.promote(1, kind: "switchover", expectDigest: digest)
        writing.set(false)
        _ = await writer.value
        #expect(done.json?["outcome"]?.stringValue == "promoted", "\(done.text)")
        #expect(done.json?["facts_digest"]?.stringValue == digest)
        #expect(done.json?["document_digest"]?.stringValue != dry.json?["document_digest"]?.stringValue,
                "the positions did move between the two captures")
    }

    @Test("PROMOTE-DIGEST-1 names what changed: an epoch change, then another policy set on a member")
    func digestNamesEpochAndPolicySet() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        // n3's dry run; then n2 is promoted: the epoch n3's operator approved is gone.
        let dry = await cluster.promote(2, kind: "switchover", dryRun: true)
        let digest = try #require(dry.json?["facts_digest"]?.stringValue, "\(dry.text)")
        let promoted = await cluster.promote(1, kind: "switchover")
        #expect(promoted.json?["outcome"]?.stringValue == "promoted", "\(promoted.text)")
        var stale = await cluster.promote(2, kind: "switchover", expectDigest: digest)
        #expect(stale.json?["rule"]?.stringValue == "PROMOTE-DIGEST-1", "\(stale.text)")
        #expect(stale.json?["message"]?.stringValue?.contains("cluster.epoch: 1 -> 2") == true, "\(stale.text)")

        // n2's dry run; then n1's policy_dir gains a policy: n1 now reports another digest.
        let again = await cluster.promote(2, kind: "switchover", dryRun: true)
        let second = try #require(again.json?["facts_digest"]?.stringValue, "\(again.text)")
        try FileManager.default.copyItem(atPath: repoRootURL.appendingPathComponent("policies/change-freeze.lua").path,
                                         toPath: cluster.policyDir + "/change-freeze.lua")
        stale = await cluster.promote(2, kind: "switchover", expectDigest: second)
        #expect(stale.json?["rule"]?.stringValue == "PROMOTE-DIGEST-1", "\(stale.text)")
        let changed = stale.json?["changed"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(changed.contains { $0.hasPrefix("nodes[n3].policy_set_digest: ") }, "\(changed)")
        #expect(changed.contains { $0.hasPrefix("policies.set_digest: ") }, "\(changed)")
        #expect(await cluster.role(1)?.role == "primary", "a refused promotion changes nothing")
    }

    @Test("PROMOTE-DIGEST-1 names what changed: a member died between the dry run and the real run")
    func digestNamesDeadMember() async throws {
        let cluster = try PromoCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let dry = await cluster.promote(1, kind: "switchover", dryRun: true)
        let digest = try #require(dry.json?["facts_digest"]?.stringValue, "\(dry.text)")
        cluster.kill9(2)
        let refused = await cluster.promote(1, kind: "switchover", expectDigest: digest)
        #expect(refused.status == 409, "\(refused.text)")
        #expect(refused.json?["rule"]?.stringValue == "PROMOTE-DIGEST-1")
        let message = refused.json?["message"]?.stringValue ?? ""
        #expect(message.contains("nodes[n3].reachable: true -> false"), "\(message)")
        #expect(refused.json?["changed"]?.arrayValue?.contains(.string("nodes[n3].reachable: true -> false")) == true)
        #expect(await cluster.role(0)?.role == "primary", "a refused promotion changes nothing")
    }
}
