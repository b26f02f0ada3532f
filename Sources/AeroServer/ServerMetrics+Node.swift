// ServerMetrics+Node.swift — the series that describe the node's authority and its replicas'
// lag, refreshed at every scrape from the node's current state, so that a scrape tells what
// is true now and not what was last reported:
//
//   aerodb_role{role="primary|replica"}       1 for this node's role, 0 for the other
//   aerodb_fenced                              1 while this primary's fence holds
//   aerodb_sync_set_size                       members of the epoch's acknowledging set (0: async)
//   aerodb_sync_quorum                         how many of them must acknowledge (0: async)
//   aerodb_replica_lag_lsn{replica}            primary durable LSN - the replica's last applied
//   aerodb_replica_lag_seconds{replica}        age of the oldest record it has not applied
//   aerodb_replica_last_contact_seconds{replica}  since the replica's last progress message
//                                              (-1: never heard from it while this node was primary)
//   aerodb_group_commit_batch_records          records per WAL fsync (a cumulative histogram)
//
// Why at scrape time: a replica that stops answering sends no more progress, so gauges set only
// on progress froze at their last value (a killed replica showed lag 0 for as long as it was
// dead). The primary's side is the measure: its durable LSN keeps moving, the replica's last
// applied position and contact time do not.
import AeroCore
import AeroStorage
import Foundation
import Prometheus

/// What the primary's replication source last heard from each replica.
public struct ReplicaProgress: Sendable, Equatable {
    public var applied: LSN
    public var contactMs: UInt64
}

/// Reads the primary's view of its replicas at scrape time; installed while this node is
/// primary (`NodeRoles.startPrimary`), removed when it stops being one.
public struct ReplicaLagSource: Sendable {
    /// Last progress per replica (absent: none since this node became primary).
    public let progress: @Sendable () -> [NodeID: ReplicaProgress]
    /// Age in seconds of the oldest record not applied at `applied`, at `nowMs`.
    public let lagSeconds: @Sendable (_ applied: LSN, _ nowMs: UInt64) -> Double
}

/// The node-state series, made once with the registry.
struct NodeStateSeries {
    let rolePrimary: Gauge
    let roleReplica: Gauge
    let fenced: Gauge
    let syncSetSize: Gauge
    let syncQuorum: Gauge
    let lastContact: [NodeID: Gauge]

    init(registry: PrometheusCollectorRegistry, replicas: [NodeID]) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "aerodb", metricName: metric, unitName: unit, helpText: help)
        }
        let roleHelp = "1 for this node's role (primary or replica), 0 for the other."
        rolePrimary = registry.makeGauge(descriptor: name("role", "", roleHelp), labels: [("role", "primary")])
        roleReplica = registry.makeGauge(descriptor: name("role", "", roleHelp), labels: [("role", "replica")])
        fenced = registry.makeGauge(descriptor: name("fenced", "", "1 while this primary is fenced (accepts no writes)."))
        syncSetSize = registry.makeGauge(descriptor: name("sync_set", "size", "Members of the epoch's acknowledging set this node waits for (0: async)."))
        syncQuorum = registry.makeGauge(descriptor: name("sync", "quorum", "How many of the acknowledging set must acknowledge each write (0: async)."))
        var contact: [NodeID: Gauge] = [:]
        for replica in replicas {
            contact[replica] = registry.makeGauge(
                descriptor: name("replica_last_contact", "seconds", "Seconds since the replica's last progress message (-1: none while this node is primary)."),
                labels: [("replica", replica.rawValue)])
        }
        lastContact = contact
    }
}

extension ServerMetrics {
    /// Refreshes every series that is read from the node's state; called before each scrape.
    func refresh(engine: StorageEngine, config: ServerConfig, nowMs: UInt64 = CommitWaiters.monotonicMs()) {
        let authority = engine.authority
        position(epoch: authority.epoch, durable: engine.durableLSN, applied: engine.appliedLSN)
        observeStorage(StorageCounts(engine.countersSnapshot()))
        let series = nodeState
        let primary = authority.role == .primary
        series.rolePrimary.set(Double(primary ? 1 : 0))
        series.roleReplica.set(Double(primary ? 0 : 1))
        series.fenced.set(Double(primary && engine.isFenced ? 1 : 0))
        var setSize = 0, quorum = 0
        if primary, case .success(let durability)? = NodeRoles.durability(config: config, authority: authority) {
            setSize = durability.set.count
            quorum = durability.quorum
        }
        series.syncSetSize.set(Double(setSize))
        series.syncQuorum.set(Double(quorum))

        guard primary, let source = lagSource else {
            // Not a primary: it measures no replica. NaN, not 0: a 0 would read "caught up".
            for replica in series.lastContact.keys { replicaLagUnknown(replica) }
            for gauge in series.lastContact.values { gauge.set(Double(-1)) }
            return
        }
        let durable = engine.durableLSN
        let progress = source.progress()
        for (replica, gauge) in series.lastContact {
            let last = progress[replica]
            let applied = last?.applied ?? LSN(0)
            replicaLag(replica, lsns: durable > applied ? durable.rawValue - applied.rawValue : 0,
                       seconds: source.lagSeconds(applied, nowMs))
            gauge.set(last.map { Double(nowMs >= $0.contactMs ? nowMs - $0.contactMs : 0) / 1000 } ?? Double(-1))
        }
    }
}
