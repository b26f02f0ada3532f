// KVService.swift — what the client HTTP API does, without HTTP: requests in, `APIResponse` out.
//
// HTTPServer.swift maps routes onto these functions; tests call them directly as well as over a
// real socket. This file is the single place that turns storage outcomes into API answers.
//
// Rules
// 1. A write is answered 200 `{"lsn":N,"epoch":E}` only after the storage engine reports it
//    durable (standalone/async: the local fsync). Any doubt is an error, never a 200.
// 2. Reads are served from a snapshot at the durable LSN and say which LSN (headers
//    `X-AeroDB-LSN`, `X-AeroDB-Epoch`); uncommitted data is never visible.
// 3. `min_lsn=N`: served only at an LSN >= N; waits at most `timeouts.min_lsn_wait_ms`, then
//    refuses with REPL-STALE-READ. Never older data silently.
// 4. Every safety refusal (`REPL-*`) is counted and journaled before it is answered.
// 5. Input is bounded before it is used: key bytes, value bytes, transaction operations, and the
//    number of entries a listing returns (`truncated: true` says it was cut).
//
// 6. Sync mode: after the local fsync a write waits for every sync replica (CommitWaiters); on
//    timeout it is refused with REPL-SYNC-TIMEOUT, saying it is durable on the primary but not
//    acknowledged. Only then is its LSN reported as acknowledged to replication. A cluster
//    primary in sync mode without commit waiters (a promotion between its authority commit and
//    `installRole`, or a primary role that failed to start) refuses every write the same way.
// 7. On a replica, reads say how far behind the primary they may be (X-AeroDB-Staleness-LSN:
//    the primary's durable LSN as last heard, minus the applied LSN).
// 8. Once this node has seen a higher epoch than its own (`learnedHigherEpoch`, from a peer), it
//    accepts no write: REPL-STALE-EPOCH before anything is written, and the engine is fenced so
//    that no commit already in flight is acknowledged after it either; such a refusal names the
//    write's LSN and says it may still be committed (it is on its sync replicas already).

import AeroCore
import AeroReplication
import AeroStorage
import Foundation
import NIOConcurrencyHelpers

/// What a primary's commit path tells replication, and (sync mode) waits for.
public struct PrimaryHooks: Sendable {
    /// New durable WAL: replicas may be sent more.
    public var walDurable: @Sendable (LSN) -> Void
    /// An LSN acknowledged to a client (carried by heartbeats).
    public var acknowledged: @Sendable (LSN) -> Void
    /// Sync mode: the waiters for the quorum's acknowledgements. nil: async.
    public var waiters: CommitWaiters?
    /// The replicas streaming from this primary now (nil: not known, nothing is refused for it).
    public var streamingReplicas: (@Sendable () -> Set<NodeID>)?
    /// Until this monotonic time (ms) a write whose quorum is not connected waits for it
    /// (`timeouts.quorum_grace_ms` after the role started or a replica session ended).
    public var quorumGraceUntilMs: (@Sendable () -> UInt64)?

    public init(walDurable: @escaping @Sendable (LSN) -> Void, acknowledged: @escaping @Sendable (LSN) -> Void, waiters: CommitWaiters?,
                streamingReplicas: (@Sendable () -> Set<NodeID>)? = nil, quorumGraceUntilMs: (@Sendable () -> UInt64)? = nil) {
        self.walDurable = walDurable
        self.acknowledged = acknowledged
        self.waiters = waiters
        self.streamingReplicas = streamingReplicas
        self.quorumGraceUntilMs = quorumGraceUntilMs
    }


    /// REPL-QUORUM-1 with the grace window: nil when the quorum is connected (at once or within
    /// the window), else the refusal's inputs. Bounded by the window's deadline.
    func quorumUnmetAfterGrace() async -> (EpochDurability, Set<NodeID>)? {
        guard var unmet = quorumUnmet() else { return nil }
        let deadlineMs = quorumGraceUntilMs?() ?? 0
        while CommitWaiters.monotonicMs() < deadlineMs {
            try? await Task.sleep(for: .milliseconds(KVService.quorumPollMs))
            guard let still = quorumUnmet() else { return nil }
            unmet = still
        }
        return unmet
    }

    /// REPL-QUORUM-1's question: fewer members of the set stream from this primary than the
    /// quorum needs? Returns the connected members when so.
    func quorumUnmet() -> (EpochDurability, Set<NodeID>)? {
        guard let durability = waiters?.durability, let streamingReplicas else { return nil }
        let connected = streamingReplicas().intersection(durability.set)
        return connected.count < durability.quorum ? (durability, connected) : nil
    }
}

/// An HTTP answer, independent of the HTTP library.
public struct APIResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var contentType: String

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8], contentType: String) {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }

    public static func json(_ value: JSONValue, status: Int = 200, headers: [(String, String)] = []) -> APIResponse {
        APIResponse(status: status, headers: headers, body: Array((value.canonicalJSON + "\n").utf8), contentType: "application/json")
    }

    public static func == (a: APIResponse, b: APIResponse) -> Bool {
        a.status == b.status && a.body == b.body && a.contentType == b.contentType
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

public final class KVService: Sendable {
    /// Poll interval while a `min_lsn` read waits for its LSN (bounded by min_lsn_wait_ms).
    static let minLSNPollMs: UInt64 = 1

    public let config: ServerConfig
    public let engine: StorageEngine
    public let journal: EventJournal
    public let metrics: ServerMetrics
    /// The role-dependent parts; a promotion or re-pointing replaces them (`installRole`).
    private let role: NIOLockedValueBox<(hooks: PrimaryHooks?, observer: ReplicationFollower.Observer?)>
    var primaryHooks: PrimaryHooks? { role.withLockedValue { $0.hooks } }
    var replicaObserver: ReplicationFollower.Observer? { role.withLockedValue { $0.observer } }
    /// The highest epoch seen from a peer, and who showed it (rule 8).
    private let higherEpoch = NIOLockedValueBox<(epoch: Epoch, from: String)?>(nil)

    public init(config: ServerConfig, engine: StorageEngine, journal: EventJournal, metrics: ServerMetrics,
                primaryHooks: PrimaryHooks? = nil, replicaObserver: ReplicationFollower.Observer? = nil) {
        self.config = config
        self.engine = engine
        self.journal = journal
        self.metrics = metrics
        self.role = NIOLockedValueBox((primaryHooks, replicaObserver))
    }

    // MARK: key-value

    public func put(key rawKey: String, value: [UInt8]) async -> APIResponse {
        let started = ContinuousClock.now
        guard let key = validKey(rawKey) else { return invalidKey(rawKey) }
        guard UInt64(value.count) <= config.budgets.valueBytesMax else {
            return respond(.request(.valueTooLarge, "value of \(value.count) bytes exceeds budgets.value_bytes_max \(config.budgets.valueBytesMax)",
                                    facts: ["bytes": .integer(Int64(value.count))]))
        }
        var transaction = Transaction()
        transaction.put(key, value)
        return await commit(transaction, started: started, context: ["key": .string(key), "op": .string("put")])
    }

    public func delete(key rawKey: String) async -> APIResponse {
        let started = ContinuousClock.now
        guard let key = validKey(rawKey) else { return invalidKey(rawKey) }
        // Absent now: nothing to write. A concurrent put is ordered after this delete.
        guard engine.get(key) != nil else { return notFound(key) }
        var transaction = Transaction()
        transaction.delete(key)
        return await commit(transaction, started: started, context: ["key": .string(key), "op": .string("delete")])
    }

    public func get(key rawKey: String, minLSN: LSN?) async -> APIResponse {
        guard let key = validKey(rawKey) else { return invalidKey(rawKey) }
        if let refusal = await waitFor(minLSN) { return respond(refusal, context: ["key": .string(key)]) }
        let snapshot = engine.snapshot()
        let headers = readHeaders(snapshot.lsn)
        guard let value = snapshot.get(key) else { return notFound(key, headers: headers) }
        return APIResponse(status: 200, headers: headers, body: value, contentType: "application/octet-stream")
    }

    public func list(prefix: String, minLSN: LSN?) async -> APIResponse {
        guard prefix.utf8.count <= Int(config.budgets.keyBytesMax) else { return invalidKey(prefix) }
        if let refusal = await waitFor(minLSN) { return respond(refusal, context: ["prefix": .string(prefix)]) }
        let snapshot = engine.snapshot()
        let limit = Int(config.budgets.listEntriesMax)
        let rows = snapshot.scan(prefix: prefix, limit: limit + 1)
        let entries: [JSONValue] = rows.prefix(limit).map { row in .object(["key": .string(row.key)].merging(Self.valueFields(row.value)) { a, _ in a }) }
        return .json(.object([
            "lsn": .integer(Int64(snapshot.lsn.rawValue)), "epoch": .integer(Int64(engine.currentEpoch.rawValue)),
            "entries": .array(entries), "truncated": .bool(rows.count > limit),
        ]), headers: readHeaders(snapshot.lsn))
    }

    /// `POST /v1/txn` with `{"ops":[...], "preconditions":[...]}` (docs/server.md).
    public func transaction(body: [UInt8]) async -> APIResponse {
        let started = ContinuousClock.now
        let parsed: Transaction
        switch TransactionRequest.parse(body, budgets: config.budgets) {
        case .failure(let refusal): return respond(refusal)
        case .success(let transaction): parsed = transaction
        }
        return await commit(parsed, started: started, context: ["op": .string("txn"), "ops": .integer(Int64(parsed.mutations.count))])
    }

    /// `writtenLSN`: the write was already made (the check after the commit wait).
    private func staleEpochRefusal(writtenLSN: LSN? = nil) -> Refusal? {
        guard let seen = higherEpoch.withLockedValue({ $0 }), seen.epoch > engine.currentEpoch else { return nil }
        return .staleEpoch(node: config.id, nodeEpoch: engine.currentEpoch, seenEpoch: seen.epoch, seenFrom: seen.from, writtenLSN: writtenLSN)
    }

    /// The highest epoch above this node's that a peer or client showed (rule 8), if any.
    var learnedEpoch: (epoch: Epoch, from: String)? {
        guard let seen = higherEpoch.withLockedValue({ $0 }), seen.epoch > engine.currentEpoch else { return nil }
        return seen
    }

    /// A peer showed an epoch above this node's: stop accepting writes (rule 8).
    public func learnedHigherEpoch(_ epoch: Epoch, from peer: String) async {
        guard epoch > engine.currentEpoch else { return }
        higherEpoch.withLockedValue { current in
            if current == nil || current!.epoch < epoch { current = (epoch, peer) }
        }
        // Waits for commits already accepted; they fail or finish, none is acknowledged after.
        _ = try? await engine.fence()
    }

    /// After a promotion (hooks of the new primary) or a re-pointing (the new follow loop's
    /// observer): the commit path and read headers use them from the next request on.
    func installRole(hooks: PrimaryHooks?, observer: ReplicationFollower.Observer?) {
        role.withLockedValue { $0 = (hooks, observer) }
    }

    /// Poll interval while a write or a promotion waits, within the grace window, for the
    /// epoch's quorum to connect.
    static let quorumPollMs: UInt64 = 2

    // MARK: status and metrics

    /// This node's facts in the node shape of the facts document, plus cluster view and history.
    public func status() -> APIResponse {
        let authority = engine.authority
        let durable = engine.durableLSN
        let failure = engine.failureReason
        let me = config.selfMember
        let labels = JSONValue.object((me?.labels ?? [:]).mapValues { .string($0) })
        let node: JSONValue = .object([
            "id": .string(config.id.rawValue),
            "role": .string(authority.role.rawValue),
            "reachable": .bool(true),
            "epoch": .integer(Int64(authority.epoch.rawValue)),
            "durable_lsn": .integer(Int64(durable.rawValue)),
            "applied_lsn": .integer(Int64(engine.appliedLSN.rawValue)),
            // Standalone/async: what is durable is acknowledged.
            "acked_lsn": authority.role == .primary ? .integer(Int64(durable.rawValue)) : .null,
            "primary_acked_lsn": .null,
            "wal": .object(["continuous": .bool(true), "corrupt": .bool(failure != nil)]),
            "recovering": .bool(false),
            "following": authority.following.map { .string($0.rawValue) } ?? .null,
            "last_contact_ms": .null,
            "labels": labels,
        ])
        let history: [JSONValue] = authority.history.map(\.json)
        let members: [JSONValue] = config.members.map {
            .object(["id": .string($0.id.rawValue), "http": .string($0.http.description), "peer": .string($0.peer.description)])
        }
        return .json(.object([
            "node": node,
            "cluster": .object([
                "members": .array(members), "commit_mode": .string(config.commitMode.rawValue),
                "sync_replicas": .array(config.syncReplicas.map { .string($0.rawValue) }),
                "sync_quorum": config.syncQuorum.map { .integer(Int64($0)) } ?? .null,
                // What "acknowledged" means in this node's current epoch (its history entry).
                "durability": (try? NodeRoles.durability(config: config, authority: authority)?.get())?.json ?? .null,
                "streaming_replicas": primaryHooks?.streamingReplicas.map { .array($0().sorted().map { .string($0.rawValue) }) } ?? .null,
            ]),
            "epoch_history": .array(history),
            "storage_failure": failure.map { .string($0) } ?? .null,
        ]))
    }

    public func metricsText() -> APIResponse {
        metrics.refresh(engine: engine, config: config)
        metrics.observeJournal(failedAppends: journal.failedAppends)
        return APIResponse(status: 200, body: Array(metrics.exposition().utf8), contentType: "text/plain; version=0.0.4")
    }

    // MARK: helpers

    private func commit(_ transaction: Transaction, started: ContinuousClock.Instant, context: [String: JSONValue]) async -> APIResponse {
        if let refusal = staleEpochRefusal() { return respond(refusal, context: context) }
        if let waiters = primaryHooks?.waiters, waiters.isFull {
            return respond(.commitBacklog(waiters: waiters.waiterCount, max: waiters.waitersMax), context: context)
        }
        // A fenced primary says so (REPL-FENCED, from the engine) before anything about its quorum.
        if !engine.isFenced, let (durability, connected) = await primaryHooks?.quorumUnmetAfterGrace() {
            return respond(.quorumUnmet(node: config.id, epoch: engine.currentEpoch, durability: durability, connected: connected), context: context)
        }
        do {
            let lsn = try await engine.commit(transaction)
            let epoch = engine.epochOfCommit(lsn)
            let hooks = primaryHooks
            if config.commitMode == .sync, config.members.count > 1, hooks?.waiters == nil {
                // The engine took the write, but no sync replica's acknowledgement can be awaited (rule 6).
                let durability = try? NodeRoles.durability(config: config, authority: engine.authority)?.get()
                return respond(.syncTimeout(lsn: lsn, epoch: epoch, missing: durability?.set ?? [], timeoutMs: 0, durability: durability), context: context)
            }
            if let hooks {
                hooks.walDurable(lsn)
                if let waiters = hooks.waiters {
                    waiters.localDurable(lsn)
                    switch await waiters.waitCommitted(lsn) {
                    case .committed:
                        break
                    case .timedOut(let missing):
                        return respond(.syncTimeout(lsn: lsn, epoch: epoch, missing: missing, timeoutMs: waiters.timeoutMs,
                                                    durability: waiters.durability), context: context)
                    case .backlogFull, .failed:
                        // Durable here, but its replicas' acknowledgement can no longer be awaited.
                        return respond(.syncTimeout(lsn: lsn, epoch: epoch, missing: [], timeoutMs: 0), context: context)
                    }
                }
                if let refusal = staleEpochRefusal(writtenLSN: lsn) { return respond(refusal, context: context) }
                hooks.acknowledged(lsn)
            }
            metrics.commits.increment()
            metrics.commitLatency.record(ContinuousClock.now - started)
            var answer: [String: JSONValue] = ["lsn": .integer(Int64(lsn.rawValue)), "epoch": .integer(Int64(epoch.rawValue))]
            // What "acknowledged" meant for this write (sync epochs; async answers as before).
            if let durability = hooks?.waiters?.durability { answer["durability"] = durability.json }
            return .json(.object(answer))
        } catch let error as StorageError {
            return respond(refusal(for: error), context: context)
        } catch {
            return respond(.request(.badRequest, "unexpected error: \(error)"), context: context)
        }
    }

    /// Maps a storage outcome to the API's codes.
    func refusal(for error: StorageError) -> Refusal {
        switch error {
        case .notWritable(let role, let following, let epoch):
            if role == .replica { return .writeOnReplica(node: config.id, primary: following, epoch: epoch) }
            return Refusal(code: .fenced, message: "\(config.id) is fenced at epoch \(epoch) and accepts no writes",
                           explanation: Explanation(rule: ErrorCode.fenced.rawValue,
                                                    summary: "a fenced primary accepts no writes until the fence is lifted or a new primary exists",
                                                    facts: ["epoch": .integer(Int64(epoch.rawValue))]))
        case .preconditionFailed(let key):
            return .request(.preconditionFailed, "precondition on key \"\(key)\" did not hold; nothing was written", facts: ["key": .string(key)])
        case .invalidKey(let key, let reason):
            return .request(.invalidKey, "invalid key \"\(key.prefix(64))\": \(reason)")
        case .valueTooLarge(let key, let bytes):
            return .request(.valueTooLarge, "value for \"\(key.prefix(64))\" is \(bytes) bytes, over the storage limit")
        case .emptyTransaction:
            return .request(.badRequest, "a transaction must contain at least one put or delete")
        case .closed:
            return Refusal(code: .shuttingDown, message: "\(config.id) is shutting down; the write was not made",
                           explanation: Explanation(rule: ErrorCode.shuttingDown.rawValue, summary: "a closed storage engine accepts no writes"))
        case .walFailed, .damaged, .io, .replicationGap, .epochLineage, .authority, .badCheckpoint:
            return .request(.storageFailed, error.description, facts: ["storage_rule": .string(error.ruleID)])
        }
    }

    /// Counts and journals a safety refusal (rule 4), then renders it.
    func respond(_ refusal: Refusal, context: [String: JSONValue] = [:]) -> APIResponse {
        if refusal.code.isSafetyRule {
            metrics.refused(rule: refusal.code.rawValue)
            do {
                try journal.appendRefusal(refusal, context: context)
            } catch {
                // The refusal stands; the journal failure is a storage failure of its own.
                return .json(Refusal.request(.storageFailed, "refused (\(refusal.code.rawValue)) but the event journal failed: \(error)").json,
                             status: ErrorCode.storageFailed.httpStatus)
            }
        }
        return .json(refusal.json, status: refusal.code.httpStatus)
    }

    private func waitFor(_ minLSN: LSN?) async -> Refusal? {
        guard let minLSN, minLSN > engine.appliedLSN else { return nil }
        let waitMs = config.timeouts.minLSNWaitMs
        let polls = waitMs / Self.minLSNPollMs
        for _ in 0..<polls {
            try? await Task.sleep(for: .milliseconds(Self.minLSNPollMs))
            if engine.appliedLSN >= minLSN { return nil }
        }
        return .staleRead(node: config.id, minLSN: minLSN, appliedLSN: engine.appliedLSN, waitedMs: waitMs)
    }

    private func readHeaders(_ lsn: LSN) -> [(String, String)] {
        var headers = [("X-AeroDB-LSN", String(lsn.rawValue)), ("X-AeroDB-Epoch", String(engine.currentEpoch.rawValue)),
                       ("X-AeroDB-Role", engine.authority.role.rawValue)]
        if let observer = replicaObserver {
            let behind = observer.primaryDurableLSN.rawValue > lsn.rawValue ? observer.primaryDurableLSN.rawValue - lsn.rawValue : 0
            headers.append(("X-AeroDB-Staleness-LSN", String(behind)))
        }
        return headers
    }

    private func validKey(_ key: String) -> String? {
        guard !key.isEmpty, key.utf8.count <= Int(config.budgets.keyBytesMax) else { return nil }
        return key
    }

    private func invalidKey(_ key: String) -> APIResponse {
        respond(.request(.invalidKey, "key must be 1...\(config.budgets.keyBytesMax) bytes of UTF-8, got \(key.utf8.count) bytes"))
    }

    private func notFound(_ key: String, headers: [(String, String)] = []) -> APIResponse {
        var response = respond(.request(.notFound, "no key \"\(key.prefix(64))\"", facts: ["key": .string(key)]))
        response.headers = headers
        return response
    }

    /// `value` as text when it is UTF-8, else `value_base64`.
    static func valueFields(_ bytes: [UInt8]) -> [String: JSONValue] {
        if let text = String(validating: bytes, as: UTF8.self) { return ["value": .string(text)] }
        return ["value_base64": .string(Data(bytes).base64EncodedString())]
    }
}

extension StorageEngine {
    /// The epoch a just-committed LSN was written in: the history entry covering it.
    func epochOfCommit(_ lsn: LSN) -> Epoch {
        authority.epoch(at: lsn) ?? currentEpoch
    }
}
