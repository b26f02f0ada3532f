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

public final class KVService: Sendable {
    public let config: ServerConfig
    public let engine: StorageEngine
    public let journal: EventJournal
    public let metrics: ServerMetrics
    /// The role-dependent parts; a promotion or re-pointing replaces them (`installRole`).
    private let role: NIOLockedValueBox<(hooks: PrimaryHooks?, observer: ReplicationFollower.Observer?)>
    var primaryHooks: PrimaryHooks? { role.withLockedValue { $0.hooks } }
    var replicaObserver: ReplicationFollower.Observer? { role.withLockedValue { $0.observer } }
    /// The highest LSN answered 200 to a client (after its epoch's durability was met); the
    /// status's `acked_lsn` on a primary. Per process: a restarted primary starts at zero.
    private let acknowledged = NIOLockedValueBox(LSN.zero)
    public var acknowledgedLSN: LSN { acknowledged.withLockedValue { $0 } }
    /// The highest epoch seen from a peer, and who showed it (rule 8).
    let higherEpoch = NIOLockedValueBox<(epoch: Epoch, from: String)?>(nil)
    /// Serializes new-label writes (check the count, then commit; ClusterLabels.swift).
    let labelWrites = AsyncMutex(waitersMax: 64)
    /// Why this primary is fenced (FenceView.swift); set and cleared by AdminService.
    let fenceRecord = NIOLockedValueBox<FenceRecord?>(nil)
    /// Reads the epoch promise this node holds (AdminService's claim file), for the status.
    let promiseView = NIOLockedValueBox<(@Sendable () -> (epoch: Epoch, candidate: NodeID)?)?>(nil)

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
        guard prefix.utf8.count <= Int(config.budgets.keyBytesMax), !SystemKeys.isReserved(prefix) else { return invalidKey(prefix) }
        if let refusal = await waitFor(minLSN) { return respond(refusal, context: ["prefix": .string(prefix)]) }
        let snapshot = engine.snapshot()
        let limit = Int(config.budgets.listEntriesMax)
        // System keys (labels, epoch records: all start with NUL) sort before every client key
        // and are never listed. Only an empty prefix reaches them: skip exactly as many as this
        // snapshot holds (epoch records grow with promotions, so no constant bound will do).
        let reserved = prefix.isEmpty ? snapshot.scan(prefix: SystemKeys.reservedLead).count : 0
        let rows = snapshot.scan(prefix: prefix, limit: limit + 1 + reserved).filter { !SystemKeys.isReserved($0.key) }.prefix(limit + 1)
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

    /// After a promotion (hooks of the new primary) or a re-pointing (the new follow loop's
    /// observer): the commit path and read headers use them from the next request on.
    func installRole(hooks: PrimaryHooks?, observer: ReplicationFollower.Observer?) {
        role.withLockedValue { $0 = (hooks, observer) }
    }

    /// Poll interval while a write or a promotion waits, within the grace window, for the
    /// epoch's quorum to connect.
    static let quorumPollMs: UInt64 = 2

    // MARK: helpers

    func commit(_ transaction: Transaction, started: ContinuousClock.Instant, context: [String: JSONValue]) async -> APIResponse {
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
            acknowledged.withLockedValue { $0 = max($0, lsn) }
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
            return Refusal(code: .fenced, message: fencedMessage(epoch: epoch),
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
        guard !key.isEmpty, key.utf8.count <= Int(config.budgets.keyBytesMax), !SystemKeys.isReserved(key) else { return nil }
        return key
    }

    private func invalidKey(_ key: String) -> APIResponse {
        if SystemKeys.isReserved(key) {
            return respond(.request(.invalidKey, "keys starting with a NUL byte are reserved for cluster state (ClusterLabels.swift); use /v1/cluster/labels for labels"))
        }
        return respond(.request(.invalidKey, "key must be 1...\(config.budgets.keyBytesMax) bytes of UTF-8, got \(key.utf8.count) bytes"))
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
