// EpochRecords.swift — how each epoch began, as cluster state: a promotion writes one record
// (kind, decision id, start time) under `SystemKeys.epochPrefix` through the commit path once
// its service is verified, so it is committed under the new epoch's durability, replicated,
// and survives failover and restart like the labels (ClusterLabels.swift, docs/storage.md).
// The facts' `cluster.history` joins the authority file's epoch history (epoch, primary, start
// LSN) with these records as the candidate applied them; an epoch without a record has null
// kind, decision id and start time, except the cluster's first epoch, which is "initial".
// The time is the promoting node's wall clock when it wrote the record; policies compare it
// with `captured_at` (the engine reads no clock).

import AeroCore
import AeroStorage

extension SystemKeys {
    public static let epochPrefix = reservedLead + "cluster/epochs/"

    /// Zero-padded so that keys sort in epoch order.
    static func epochKey(_ epoch: Epoch) -> String {
        let digits = String(epoch.rawValue)
        return epochPrefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }
}

enum EpochRecords {
    /// Writes epoch `epoch`'s record; the commit's answer (200 with its LSN, or the refusal).
    static func write(service: KVService, epoch: Epoch, kind: PromotionKind, decisionID: String, startedAtMs: UInt64) async -> APIResponse {
        let record = JSONValue.object([
            "epoch": .integer(Int64(epoch.rawValue)), "kind": .string(kind.rawValue), "decision_id": .string(decisionID),
            "started_at": .string(PromotionFacts.rfc3339(ms: startedAtMs)),
        ])
        var transaction = Transaction()
        transaction.put(SystemKeys.epochKey(epoch), Array(record.canonicalJSON.utf8))
        return await service.commit(transaction, started: .now, context: ["op": .string("epoch_record"), "epoch": .integer(Int64(epoch.rawValue))])
    }

    /// The facts' history: the newest `FactsDocument.historyEntriesMax` epochs of `authority`.
    static func history(authority: Authority, snapshot: Snapshot) -> [EpochFacts] {
        let entries = authority.history.suffix(FactsDocument.historyEntriesMax)
        return entries.map { entry in
            let record = snapshot.get(SystemKeys.epochKey(entry.epoch)).flatMap { try? JSONParser.parse(String(decoding: $0, as: UTF8.self)) }
            let first = entry.epoch == authority.history.first?.epoch
            return EpochFacts(
                epoch: entry.epoch, primary: entry.primary, startLSN: entry.startLSN,
                kind: record?["kind"]?.stringValue ?? (first ? "initial" : nil),
                decisionID: record?["decision_id"]?.stringValue,
                startedAt: record?["started_at"]?.stringValue)
        }
    }
}
