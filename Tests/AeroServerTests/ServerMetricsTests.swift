import AeroCore
import AeroReplication
import AeroServer
import AeroTestSupport
import Foundation
import Testing

@Suite("Server metrics")
struct ServerMetricsTests {
    @Test("every named series is exposed from the start, refusals per rule at zero")
    func exposition() {
        let metrics = ServerMetrics(replicas: ["n2", "n3"])
        let text = metrics.exposition()
        for name in ["aerodb_commits_total", "aerodb_fsyncs_total", "aerodb_group_commit_records_total", "aerodb_group_commit_batch_records_bucket{le=\"+Inf\"} 0",
                     "# TYPE aerodb_group_commit_batch_records histogram", "aerodb_role{role=\"primary\"}", "aerodb_fenced",
                     "aerodb_sync_set_size", "aerodb_sync_quorum", "aerodb_replica_last_contact_seconds{replica=\"n2\"}",
                     "aerodb_commit_latency_seconds_bucket", "aerodb_epoch", "aerodb_durable_lsn", "aerodb_applied_lsn",
                     "aerodb_replica_lag_lsn{replica=\"n2\"}", "aerodb_replica_lag_seconds{replica=\"n3\"}",
                     "aerodb_journal_write_failures_total 0"] {
            #expect(text.contains(name), "missing \(name)")
        }
        for code in ErrorCode.allCases where code.isSafetyRule {
            #expect(text.contains("aerodb_refusals_total{rule=\"\(code.rawValue)\"} 0"), "missing refusal series \(code.rawValue)")
        }
    }

    @Test("recorded values appear in the exposition")
    func values() {
        let metrics = ServerMetrics(replicas: ["n2"])
        metrics.commits.increment()
        metrics.commits.increment()
        var storage = ServerMetrics.StorageCounts()
        storage.fsyncs = 2
        storage.groupCommitRecords = 5
        storage.groupCommitBatchHistogram = [1, 0, 1, 0, 0, 0, 0, 0]
        metrics.observeStorage(storage)
        storage.fsyncs = 3
        storage.groupCommitBatchHistogram = [2, 0, 1, 0, 0, 0, 0, 0]
        metrics.observeStorage(storage)
        metrics.refused(rule: "REPL-STALE-READ")
        metrics.replicaLag("n2", lsns: 17, seconds: 0.25)
        metrics.position(epoch: Epoch(3), durable: LSN(99), applied: LSN(98))
        let text = metrics.exposition()
        #expect(text.contains("aerodb_commits_total 2"))
        #expect(text.contains("aerodb_fsyncs_total 3"), "deltas add up to the storage total")
        #expect(text.contains("aerodb_group_commit_records_total 5"))
        // Cumulative buckets: 2 batches of 1 record, 1 of 3-4 records; 5 records in 3 batches.
        #expect(text.contains("aerodb_group_commit_batch_records_bucket{le=\"1\"} 2"))
        #expect(text.contains("aerodb_group_commit_batch_records_bucket{le=\"2\"} 2"))
        #expect(text.contains("aerodb_group_commit_batch_records_bucket{le=\"4\"} 3"))
        #expect(text.contains("aerodb_group_commit_batch_records_bucket{le=\"+Inf\"} 3"))
        #expect(text.contains("aerodb_group_commit_batch_records_sum 5\naerodb_group_commit_batch_records_count 3\n"))
        #expect(text.contains("aerodb_refusals_total{rule=\"REPL-STALE-READ\"} 1"))
        #expect(text.contains("aerodb_replica_lag_lsn{replica=\"n2\"} 17"))
        #expect(text.contains("aerodb_replica_lag_seconds{replica=\"n2\"} 0.25"))
        #expect(text.contains("aerodb_durable_lsn 99"))
    }

    @Test("a refusal of an unknown rule is a programmer error")
    func unknownRule() async {
        await #expect(processExitsWith: .failure) { ServerMetrics(replicas: []).refused(rule: "NOPE") }
    }
}
