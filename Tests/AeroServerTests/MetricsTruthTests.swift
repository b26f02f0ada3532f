// MetricsTruthTests.swift — /metrics of the default local cluster read by a real Prometheus
// text-format parser (Python's prometheus_client, installed by scripts/install-deps): every
// series parses with its declared type, the node-state gauges say who is primary and what it
// waits for, and the lag of a replica killed with -9 rises with the writes it misses (it used
// to stay at its last reported value, 0, for as long as the replica was dead).
import AeroCore
import AeroTestSupport
import Foundation
import Testing

@Suite("metrics tell the truth (real processes, prometheus_client)", .serialized)
struct MetricsTruthTests {
    /// One parsed sample: its labels and value.
    struct Sample: Equatable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    /// Families by name: (type, samples), as prometheus_client parses the exposition.
    static func parse(_ text: String, python: String) throws -> [String: (type: String, samples: [Sample])] {
        let dir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let input = dir + "/metrics.txt", script = dir + "/parse.py"
        try text.write(toFile: input, atomically: true, encoding: .utf8)
        try """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                out[family.name] = {"type": family.type,
                                    "samples": [[s.name, s.labels, s.value if s.value == s.value else "NaN"] for s in family.samples]}
            print(json.dumps(out))
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let run = try ProcessRun.run(URL(fileURLWithPath: python), [script, input])
        #expect(run.status == 0, "prometheus_client refused the exposition: \(run.stderr)")
        let stdout = Data(run.stdout.utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: [String: Any]])
        var families: [String: (type: String, samples: [Sample])] = [:]
        for (name, family) in json {
            let samples = (family["samples"] as? [[Any]] ?? []).map { raw in
                Sample(name: raw[0] as? String ?? "", labels: raw[1] as? [String: String] ?? [:],
                       value: (raw[2] as? NSNumber)?.doubleValue ?? .nan)
            }
            families[name] = (family["type"] as? String ?? "", samples)
        }
        return families
    }

    static func value(_ families: [String: (type: String, samples: [Sample])], _ family: String, sample: String? = nil,
                      _ labels: [String: String] = [:]) -> Double? {
        families[family]?.samples.first { $0.name == (sample ?? family) && $0.labels == labels }?.value
    }

    @Test("names and types parse; role, fence and sync set are reported; a killed replica's lag and silence grow")
    func killedReplicaLagRises() async throws {
        guard let python = PolicyTestReportsPython.python3WithModule("prometheus_client") else {
            Issue.record("python3 with prometheus_client is missing: run scripts/install-deps")
            return
        }
        let cluster = try LocalClusterHarness(nodes: 3)
        defer { cluster.stop() }
        for i in 0..<5 { #expect(await cluster.request(0, "PUT", "/v1/kv/before-\(i)", body: "v").status == 200) }

        let start = try Self.parse(await cluster.request(0, "GET", "/metrics").text, python: python)
        let types: [String: String] = [
            "aerodb_commits": "counter", "aerodb_fsyncs": "counter", "aerodb_commit_latency_seconds": "histogram",
            "aerodb_group_commit_batch_records": "histogram", "aerodb_replica_lag_lsn": "gauge",
            "aerodb_replica_lag_seconds": "gauge", "aerodb_replica_last_contact_seconds": "gauge",
            "aerodb_role": "gauge", "aerodb_fenced": "gauge", "aerodb_sync_set_size": "gauge", "aerodb_sync_quorum": "gauge",
            "aerodb_refusals": "counter", "aerodb_epoch": "gauge",
        ]
        for (name, type) in types {
            #expect(start[name]?.type == type, "\(name): \(start[name]?.type ?? "absent")")
        }
        #expect(Self.value(start, "aerodb_role", ["role": "primary"]) == 1)
        #expect(Self.value(start, "aerodb_role", ["role": "replica"]) == 0)
        #expect(Self.value(start, "aerodb_fenced") == 0)
        // local-cluster's default: ANY 1 of the two replicas.
        #expect(Self.value(start, "aerodb_sync_set_size") == 2)
        #expect(Self.value(start, "aerodb_sync_quorum") == 1)
        let batches = try #require(Self.value(start, "aerodb_group_commit_batch_records", sample: "aerodb_group_commit_batch_records_count"))
        #expect(batches >= 5, "five writes, at least five fsync batches on the primary (the epoch record too)")
        let replicaStatus = try Self.parse(await cluster.request(2, "GET", "/metrics").text, python: python)
        #expect(Self.value(replicaStatus, "aerodb_role", ["role": "replica"]) == 1)
        #expect(Self.value(replicaStatus, "aerodb_sync_set_size") == 0)
        #expect(Self.value(replicaStatus, "aerodb_replica_lag_lsn", ["replica": "n1"])?.isNaN == true, "a replica measures no lag: NaN, not 0")

        // One label convention: a refused dry run counts the bare rule id (FENCE-1: n1 is alive).
        let dry = await cluster.request(1, "POST", "/v1/admin/promote", body: #"{"kind":"failover","dry_run":true,"requested_by":"metrics-test"}"#)
        #expect(dry.json?["outcome"]?.stringValue == "refused", "\(dry.text)")
        let decided = try Self.parse(await cluster.request(1, "GET", "/metrics").text, python: python)
        #expect(Self.value(decided, "aerodb_promotion_refusals", sample: "aerodb_promotion_refusals_total", ["rule": "FENCE-1"]) == 1)
        #expect(!(decided["aerodb_promotion_refusals"]?.samples ?? []).contains { $0.labels["rule"]?.contains(":") == true },
                "no rule label carries a source prefix")

        cluster.kill9(2)
        for i in 0..<20 { #expect(await cluster.request(0, "PUT", "/v1/kv/after-\(i)", body: "v").status == 200) }
        let afterKill = try Self.parse(await cluster.request(0, "GET", "/metrics").text, python: python)
        let lagDead = try #require(Self.value(afterKill, "aerodb_replica_lag_lsn", ["replica": "n3"]))
        let lagLive = try #require(Self.value(afterKill, "aerodb_replica_lag_lsn", ["replica": "n2"]))
        #expect(lagDead >= 20, "n3 was killed and missed 20 writes: lag \(lagDead)")
        #expect(lagLive < lagDead, "n2 keeps up: lag \(lagLive)")
        let silentBefore = try #require(Self.value(afterKill, "aerodb_replica_last_contact_seconds", ["replica": "n3"]))

        for i in 0..<10 { #expect(await cluster.request(0, "PUT", "/v1/kv/later-\(i)", body: "v").status == 200) }
        try await Task.sleep(for: .milliseconds(300))
        let later = try Self.parse(await cluster.request(0, "GET", "/metrics").text, python: python)
        let lagLater = try #require(Self.value(later, "aerodb_replica_lag_lsn", ["replica": "n3"]))
        #expect(lagLater >= lagDead + 10, "lag rises with every missed write: \(lagDead) then \(lagLater)")
        let silentLater = try #require(Self.value(later, "aerodb_replica_last_contact_seconds", ["replica": "n3"]))
        #expect(silentLater >= silentBefore + 0.2, "time since n3's last contact grows: \(silentBefore) then \(silentLater)")
        #expect(try #require(Self.value(later, "aerodb_replica_lag_seconds", ["replica": "n3"])) > 0)
    }
}

/// The python3 on PATH, if it can import `module`.
enum PolicyTestReportsPython {
    static func python3WithModule(_ module: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let python = path.split(separator: ":").map({ "\($0)/python3" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import \(module)"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        guard (try? process.run()) != nil else { return nil }
        return ChildProcess.waitOrKill(process).status == 0 ? python : nil
    }
}
