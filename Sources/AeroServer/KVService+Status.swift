// KVService+Status.swift — `GET /v1/status` and `/metrics`. The node part of the status is
// NodeStatus.facts (measured there, one type for status and facts capture); this file adds the
// node's view of the cluster and its epoch history.

import AeroCore
import AeroStorage

extension KVService {
    /// This node's facts now (NodeStatus.swift), measured against the monotonic clock.
    public func nodeFacts() -> NodeFacts {
        NodeStatus.facts(service: self, nowMs: CommitWaiters.monotonicMs())
    }

    /// This node's facts in the node shape of the facts document, plus cluster view and history.
    public func status() -> APIResponse {
        let authority = engine.authority
        let history: [JSONValue] = authority.history.map(\.json)
        let members: [JSONValue] = config.members.map {
            .object(["id": .string($0.id.rawValue), "http": .string($0.http.description), "peer": .string($0.peer.description)])
        }
        return .json(.object([
            "node": nodeFacts().json,
            "cluster": .object([
                "members": .array(members), "commit_mode": .string(config.commitMode.rawValue),
                "sync_replicas": .array(config.syncReplicas.map { .string($0.rawValue) }),
                "sync_quorum": config.syncQuorum.map { .integer(Int64($0)) } ?? .null,
                // What "acknowledged" means in this node's current epoch (its history entry).
                "durability": (try? NodeRoles.durability(config: config, authority: authority)?.get())?.json ?? .null,
                "streaming_replicas": primaryHooks?.streamingReplicas.map { .array($0().sorted().map { .string($0.rawValue) }) } ?? .null,
            ]),
            "epoch_history": .array(history),
            // A fenced primary's fence (FenceView.swift) and any epoch promise this node holds.
            "fence": fenceJSON(),
            "epoch_promise": epochPromiseJSON(),
            "storage_failure": engine.failureReason.map { .string($0) } ?? .null,
        ]))
    }

    public func metricsText() -> APIResponse {
        metrics.refresh(engine: engine, config: config)
        metrics.observeJournal(failedAppends: journal.failedAppends)
        return APIResponse(status: 200, body: Array(metrics.exposition().utf8), contentType: "text/plain; version=0.0.4")
    }
}
