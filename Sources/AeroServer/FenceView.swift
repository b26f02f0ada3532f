// FenceView.swift — what an operator needs to know about a fenced primary, in one place: the
// status's `fence` and `epoch_promise`, and the text of REPL-FENCED (issue 17: a fenced primary
// was invisible, and its refusal named neither the attempt nor the command that lifts it).
//
// The fence itself is the engine's (StorageEngine.fence/unfence); this record only says why it
// was raised. It is set by AdminService.fence (a candidate's switchover), cleared where the
// engine's fence is lifted (unfence, follow), and absent for a fence raised because a newer
// epoch was seen (KVService+Epoch): that case is told from `learnedEpoch`.
import AeroCore
import Foundation

/// Why this primary is fenced, as the fencing request said.
public struct FenceRecord: Sendable, Equatable {
    public let epoch: Epoch
    public let toEpoch: Epoch
    public let candidate: NodeID
    /// The candidate's decision id for the attempt (nil when an older candidate sent none).
    public let attempt: String?
    /// Wall-clock milliseconds when the fence was raised (for display; decisions never read it).
    public let sinceMs: UInt64
}

extension KVService {
    /// `fence` of the status: nil when the engine is not fenced.
    func fenceJSON() -> JSONValue {
        guard engine.isFenced else { return .null }
        if let record = fenceRecord.withLockedValue({ $0 }) {
            return .object([
                "epoch": .integer(Int64(record.epoch.rawValue)), "to_epoch": .integer(Int64(record.toEpoch.rawValue)),
                "candidate": .string(record.candidate.rawValue), "attempt": record.attempt.map(JSONValue.string) ?? .null,
                "since": .string(PromotionFacts.rfc3339(ms: record.sinceMs)), "cause": .string("switchover"),
            ])
        }
        let seen = learnedEpoch
        return .object([
            "epoch": .integer(Int64(engine.currentEpoch.rawValue)),
            "to_epoch": seen.map { .integer(Int64($0.epoch.rawValue)) } ?? .null,
            "candidate": .null, "attempt": .null, "since": .null,
            "cause": .string(seen.map { "epoch \($0.epoch) seen from \($0.from)" } ?? "fenced"),
        ])
    }

    /// `epoch_promise` of the status: the epoch this node promised to a candidate, if any.
    func epochPromiseJSON() -> JSONValue {
        guard let promise = promiseView.withLockedValue({ $0 })?() else { return .null }
        return .object(["epoch": .integer(Int64(promise.epoch.rawValue)), "candidate": .string(promise.candidate.rawValue)])
    }

    /// REPL-FENCED's message: the attempt that fenced, and what lifts the fence.
    func fencedMessage(epoch: Epoch) -> String {
        let me = config.selfMember.map { " --addr \($0.http)" } ?? ""
        if let record = fenceRecord.withLockedValue({ $0 }), engine.isFenced {
            let attempt = record.attempt.map { " (attempt \($0))" } ?? ""
            return "\(config.id) is fenced at epoch \(epoch) for \(record.candidate)'s switchover to epoch \(record.toEpoch)\(attempt) since \(PromotionFacts.rfc3339(ms: record.sinceMs)) and accepts no writes: if \(record.candidate) became primary, send writes to it; if that switchover failed, `aerodb unfence\(me)` lifts the fence (it asks \(record.candidate) first)"
        }
        if let seen = learnedEpoch {
            return "\(config.id) is fenced at epoch \(epoch): epoch \(seen.epoch) was seen from \(seen.from), so a newer primary exists; this node must rejoin it (`aerodb rejoin\(me) --primary-addr NEW-PRIMARY`)"
        }
        return "\(config.id) is fenced at epoch \(epoch) and accepts no writes; `aerodb status\(me)` shows its fence, `aerodb unfence\(me)` lifts it after a switchover that failed"
    }
}
