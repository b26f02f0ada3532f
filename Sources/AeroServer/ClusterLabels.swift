// ClusterLabels.swift — cluster labels: cluster state written through the WAL like data.
//
// Representation (docs/storage.md, "System keys"): each label is one key in a reserved system
// namespace, `SystemKeys.labelPrefix + name`, holding the value's UTF-8 bytes. A label write is
// therefore an ordinary transaction: committed on the primary under its epoch's durability
// (the same commit path, refusals and answers as a PUT), shipped to replicas in the WAL,
// applied with it, kept by checkpoints and re-seeds, and still there after a failover or a
// restart — with no new WAL record kind and no second replication path to get wrong.
// Every system key starts with a NUL byte; KVService refuses any client key that does, and
// leaves them out of listings, so user keys cannot address (read, write, precondition on or
// list) cluster state.
//
// Rules
// 1. Names: 1...`nameBytesMax` bytes of [a-z0-9._-/], starting with a letter or digit.
//    Values: 0...`valueBytesMax` bytes of UTF-8 with no control character. At most `countMax`
//    labels. Each refusal names the label, the field and the value (REQ-BAD-REQUEST, 400).
// 2. A replica refuses a label write like any write (REPL-WRITE-ON-REPLICA).
// 3. `GET /v1/cluster/labels` and the facts' `cluster.labels` read the node's applied view.

import AeroCore
import AeroStorage

/// Reserved key namespaces of cluster state. A client key never starts with `reservedLead`.
public enum SystemKeys {
    /// The first byte of every system key (a NUL, which no sane client key starts with).
    public static let reservedLead = "\u{0}"
    public static let labelPrefix = reservedLead + "cluster/labels/"

    public static func isReserved(_ key: String) -> Bool { key.hasPrefix(reservedLead) }
}

public enum ClusterLabels {
    public static let nameBytesMax = 63
    public static let valueBytesMax = 256
    /// A policy reads every label; a bounded count keeps facts documents and reads small.
    public static let countMax = 64

    /// Why `name` is not a label name, or nil.
    public static func nameProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= nameBytesMax else {
            return "label name \"\(name.prefix(80))\" must be 1...\(nameBytesMax) bytes, got \(bytes.count)"
        }
        let allowed = { (b: UInt8) in (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 46 || b == 95 || b == 45 || b == 47 }
        guard bytes.allSatisfy(allowed), let first = bytes.first, (first >= 97 && first <= 122) || (first >= 48 && first <= 57) else {
            return "label name \"\(name.prefix(80))\" may hold only a-z, 0-9, '.', '_', '-', '/' and must start with a letter or digit"
        }
        return nil
    }

    /// Why `value` is not a value for label `name`, or nil.
    public static func valueProblem(name: String, _ value: [UInt8]) -> String? {
        guard value.count <= valueBytesMax else {
            return "value of label \"\(name)\" is \(value.count) bytes; at most \(valueBytesMax)"
        }
        guard let text = String(validating: value, as: UTF8.self) else { return "value of label \"\(name)\" is not UTF-8" }
        if let bad = text.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            return "value of label \"\(name)\" holds the control character U+\(String(bad.value, radix: 16, uppercase: true))"
        }
        return nil
    }

    /// The labels in `snapshot` (the node's applied view), name to value.
    public static func read(_ snapshot: Snapshot) -> [String: String] {
        var labels: [String: String] = [:]
        for row in snapshot.scan(prefix: SystemKeys.labelPrefix, limit: countMax + 1) {
            labels[String(row.key.dropFirst(SystemKeys.labelPrefix.count))] = String(decoding: row.value, as: UTF8.self)
        }
        return labels
    }
}

extension KVService {
    /// `GET /v1/cluster/labels`: the applied view, with the LSN it was read at.
    public func clusterLabels() -> APIResponse {
        let snapshot = engine.snapshot()
        return .json(.object([
            "labels": .object(ClusterLabels.read(snapshot).mapValues(JSONValue.string)),
            "lsn": .integer(Int64(snapshot.lsn.rawValue)), "epoch": .integer(Int64(engine.currentEpoch.rawValue)),
        ]))
    }

    /// `PUT /v1/cluster/labels/{name}` with the value as the body.
    public func setClusterLabel(name: String, value: [UInt8]) async -> APIResponse {
        let started = ContinuousClock.now
        if let problem = ClusterLabels.nameProblem(name) ?? ClusterLabels.valueProblem(name: name, value) {
            return respond(.request(.badRequest, problem, facts: ["label": .string(String(name.prefix(80)))]))
        }
        // A replica refuses a label write like any write, before any label check (rule 2).
        let authority = engine.authority
        if authority.role == .replica {
            return respond(refusal(for: .notWritable(role: .replica, following: authority.following, epoch: authority.epoch)))
        }
        // Check and commit under one lock: two new labels at once cannot both pass the count.
        let answer = await labelWrites.withLock { [self] in
            let existing = ClusterLabels.read(engine.snapshot())
            if existing[name] == nil, existing.count >= ClusterLabels.countMax {
                return respond(.request(.badRequest, "the cluster has \(existing.count) labels, the most it keeps (\(ClusterLabels.countMax)); unset one first",
                                        facts: ["label": .string(name)]))
            }
            var transaction = Transaction()
            transaction.put(SystemKeys.labelPrefix + name, value)
            return await commit(transaction, started: started, context: ["label": .string(name), "op": .string("label_set")])
        }
        return answer ?? respond(.request(.badRequest, "\(labelWrites.waitersMax) label writes are already waiting; ask again once they are done",
                                          facts: ["label": .string(name)]))
    }

    /// `DELETE /v1/cluster/labels/{name}`. Removing an absent label is still a write (so a
    /// replica refuses it like any write), and answers `removed: false`.
    public func unsetClusterLabel(name: String) async -> APIResponse {
        let started = ContinuousClock.now
        if let problem = ClusterLabels.nameProblem(name) {
            return respond(.request(.badRequest, problem, facts: ["label": .string(String(name.prefix(80)))]))
        }
        let existed = engine.get(SystemKeys.labelPrefix + name) != nil
        var transaction = Transaction()
        transaction.delete(SystemKeys.labelPrefix + name)
        var response = await commit(transaction, started: started, context: ["label": .string(name), "op": .string("label_unset")])
        if response.status == 200, case .object(var fields)? = try? JSONParser.parse(response.bodyText) {
            fields["removed"] = .bool(existed)
            response = .json(.object(fields))
        }
        return response
    }
}
