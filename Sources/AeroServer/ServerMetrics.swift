// ServerMetrics.swift — the node's Prometheus metrics (swift-prometheus), served by GET /metrics.
//
// Names (docs/server.md, "Metrics", lists them with their meaning):
//   aerodb_commits_total                     writes acknowledged to clients
//   aerodb_fsyncs_total                      WAL fsyncs
//   aerodb_group_commit_batch_records        records per fsync batch: a histogram (buckets 1,
//                                            2, 4, ..., 64, +Inf; cumulative, with _sum and _count)
//   aerodb_group_commit_records_total        records made durable by group commits
//   aerodb_commit_latency_seconds            request received -> acknowledged (histogram)
//   aerodb_replica_lag_lsn{replica}          primary durable LSN - replica applied LSN
//   aerodb_replica_lag_seconds{replica}      age of the oldest record the replica has not applied
//   aerodb_refusals_total{rule}              safety refusals by rule id
//   aerodb_journal_write_failures_total      event journal appends that failed (EventJournal rule 6)
//   aerodb_epoch, aerodb_durable_lsn, aerodb_applied_lsn   this node's position
//   aerodb_role{role}, aerodb_fenced, aerodb_sync_set_size, aerodb_sync_quorum,
//   aerodb_replica_last_contact_seconds{replica}   ServerMetrics+Node.swift (read at each scrape)
//
// Design notes
// - Handles are created up front (and per replica when a member is configured), so every series
//   exists at zero from the start and a scrape shows what is measured, not only what happened.
// - Each ServerMetrics has its own registry; the process-wide swift-metrics backend
//   (`MetricsSystem.bootstrap`) is installed by `aerodb serve`, not here, so tests can build as
//   many registries as they like.
// - Label values are member ids and rule ids from configuration and code: bounded cardinality.
// - Storage-owned counts (fsyncs, group-commit batches) are the engine's own counters, copied
//   in by `observeStorage` at each scrape as deltas: the engine counts, this file only exports.

import AeroCore
import AeroStorage
import Foundation
import Prometheus

public final class ServerMetrics: @unchecked Sendable {
    // @unchecked: `lastStorage` and `lastJournalFailures` are guarded by `lock`; every other stored property is immutable
    // and Sendable.
    /// Commit latency buckets, 100 µs to 10 s.
    public static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
    ]

    public let registry: PrometheusCollectorRegistry
    public let commits: Counter
    public let fsyncs: Counter
    public let groupCommitRecords: Counter
    private let lock = NSLock()
    private var lastStorage = StorageCounts()
    /// The primary's view of its replicas (nil: not primary); guarded by `lock`.
    private var lagSourceValue: ReplicaLagSource?
    let nodeState: NodeStateSeries
    public let commitLatency: DurationHistogram
    public let epoch: Gauge
    public let durableLSN: Gauge
    public let appliedLSN: Gauge
    public let journalWriteFailures: Counter
    private var lastJournalFailures: UInt64 = 0
    private let refusalsByRule: [String: Counter]
    private let lagLSN: [NodeID: Gauge]
    private let lagSeconds: [NodeID: Gauge]

    /// `replicas`: the members this node may see as replicas (lag series are created for each).
    public init(replicas: [NodeID], registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        commits = registry.makeCounter(descriptor: Self.name("commits", "total", "Writes acknowledged to clients."))
        fsyncs = registry.makeCounter(descriptor: Self.name("fsyncs", "total", "WAL fsyncs."))
        groupCommitRecords = registry.makeCounter(
            descriptor: Self.name("group_commit_records", "total", "Records made durable by group commits."))
        commitLatency = registry.makeDurationHistogram(
            descriptor: Self.name("commit_latency", "seconds", "Time from receiving a write to acknowledging it."),
            buckets: Self.latencyBuckets)
        epoch = registry.makeGauge(descriptor: Self.name("epoch", "", "This node's epoch."))
        durableLSN = registry.makeGauge(descriptor: Self.name("durable", "lsn", "Last LSN durable in this node's WAL."))
        appliedLSN = registry.makeGauge(descriptor: Self.name("applied", "lsn", "Last LSN applied to this node's readable state."))
        journalWriteFailures = registry.makeCounter(
            descriptor: Self.name("journal_write_failures", "total", "Event journal appends that failed; the journal refuses appends from the first one on."))
        var refusals: [String: Counter] = [:]
        for code in ErrorCode.allCases where code.isSafetyRule {
            refusals[code.rawValue] = registry.makeCounter(
                descriptor: Self.name("refusals", "total", "Safety refusals by rule id."), labels: [("rule", code.rawValue)])
        }
        refusalsByRule = refusals
        var lsnGauges: [NodeID: Gauge] = [:]
        var secondGauges: [NodeID: Gauge] = [:]
        for replica in replicas {
            lsnGauges[replica] = registry.makeGauge(
                descriptor: Self.name("replica_lag", "lsn", "Primary durable LSN minus the replica's applied LSN."),
                labels: [("replica", replica.rawValue)])
            secondGauges[replica] = registry.makeGauge(
                descriptor: Self.name("replica_lag", "seconds", "Age of the oldest record the replica has not applied."),
                labels: [("replica", replica.rawValue)])
        }
        lagLSN = lsnGauges
        lagSeconds = secondGauges
        nodeState = NodeStateSeries(registry: registry, replicas: replicas)
    }

    /// Installed by the primary's replication source; nil when the node stops being primary.
    public var lagSource: ReplicaLagSource? {
        get { lock.lock(); defer { lock.unlock() }; return lagSourceValue }
        set { lock.lock(); defer { lock.unlock() }; lagSourceValue = newValue }
    }

    /// `aerodb_<metric>_<unit>` with its help text.
    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "aerodb", metricName: metric, unitName: unit, helpText: help)
    }

    /// Counts a safety refusal. A rule id without a pre-created series is a programmer error.
    public func refused(rule: String) {
        guard let counter = refusalsByRule[rule] else { preconditionFailure("no refusal counter for rule \(rule)") }
        counter.increment()
    }

    /// The storage engine's counts that are exported here.
    public struct StorageCounts: Sendable, Equatable {
        public var fsyncs: UInt64 = 0
        public var groupCommitRecords: UInt64 = 0
        /// Batches by record count, in StorageCounters.batchHistogramBounds buckets + one >64.
        public var groupCommitBatchHistogram = [UInt64](repeating: 0, count: StorageCounters.batchHistogramBounds.count + 1)

        public init() {}

        public init(_ counters: StorageCounters) {
            fsyncs = counters.fsyncs
            groupCommitRecords = counters.groupCommitRecords
            groupCommitBatchHistogram = counters.groupCommitBatchHistogram
        }
    }

    /// Copies the storage engine's counts in, as increments since the previous call.
    public func observeStorage(_ counters: StorageCounts) {
        precondition(counters.groupCommitBatchHistogram.count == StorageCounters.batchHistogramBounds.count + 1, "storage histogram shape changed")
        lock.lock()
        defer { lock.unlock() }
        let last = lastStorage
        precondition(counters.fsyncs >= last.fsyncs && counters.groupCommitRecords >= last.groupCommitRecords,
            "storage counters went back")
        fsyncs.increment(by: Int64(counters.fsyncs - last.fsyncs))
        groupCommitRecords.increment(by: Int64(counters.groupCommitRecords - last.groupCommitRecords))
        lastStorage = counters
    }

    /// Copies the event journal's count of failed appends in, as the increment since the last call.
    public func observeJournal(failedAppends: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        precondition(failedAppends >= lastJournalFailures, "journal failure count went back")
        journalWriteFailures.increment(by: Int64(failedAppends - lastJournalFailures))
        lastJournalFailures = failedAppends
    }

    public func replicaLag(_ replica: NodeID, lsns: UInt64, seconds: Double) {
        guard let lsnGauge = lagLSN[replica], let secondsGauge = lagSeconds[replica] else {
            preconditionFailure("no lag series for replica \(replica)")
        }
        lsnGauge.set(Double(lsns))
        secondsGauge.set(seconds)
    }

    /// The lag series of `replica` when this node does not measure it (it is not primary).
    public func replicaLagUnknown(_ replica: NodeID) {
        guard let lsnGauge = lagLSN[replica], let secondsGauge = lagSeconds[replica] else {
            preconditionFailure("no lag series for replica \(replica)")
        }
        lsnGauge.set(Double.nan)
        secondsGauge.set(Double.nan)
    }

    public func position(epoch: Epoch, durable: LSN, applied: LSN) {
        self.epoch.set(Double(epoch.rawValue))
        durableLSN.set(Double(durable.rawValue))
        appliedLSN.set(Double(applied.rawValue))
    }

    /// The Prometheus text exposition of every series.
    public func exposition() -> String {
        let storage: StorageCounts = { lock.lock(); defer { lock.unlock() }; return lastStorage }()
        return registry.emitToString() + Self.batchHistogramText(storage)
    }

    /// The storage engine's per-bucket batch counts as a Prometheus histogram. The engine counts
    /// batches per bucket (not cumulative) and the records in all of them; the exposition needs
    /// cumulative buckets, `_sum` (records) and `_count` (batches). swift-prometheus histograms
    /// take observations, and the engine hands over counts, so the text is written here.
    static func batchHistogramText(_ storage: StorageCounts) -> String {
        let name = "aerodb_group_commit_batch_records"
        var text = "# HELP \(name) Records per WAL fsync batch (group commit).\n# TYPE \(name) histogram\n"
        var cumulative: UInt64 = 0
        let bounds = StorageCounters.batchHistogramBounds.map(String.init) + ["+Inf"]
        for (index, bound) in bounds.enumerated() {
            cumulative += storage.groupCommitBatchHistogram[index]
            text += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        text += "\(name)_sum \(storage.groupCommitRecords)\n\(name)_count \(cumulative)\n"
        return text
    }
}
