// ReseedInPlace.swift — a running replica re-seeds itself when its primary answers `mustReseed`.
//
// Only the proven-safe case, the same as at start (ReseedStartup.swift): the primary sends
// `mustReseed` after its divergence and history checks passed, so this replica's WAL is a prefix
// of the primary's history and strictly behind the checkpoint; re-seeding moves it forward and
// discards nothing that is not in the checkpoint. A diverged node is refused (REPL-DIVERGED) and
// never re-seeded without an operator's `aerodb reseed`.
//
// Sequence (`ReseedInPlace.run`, called by the follow loop after the ended session's appends
// settled, so nothing is pending and no session is running):
//   1. The transfer `aerodb reseed` uses (`Reseed.transfer`): the primary's status (a primary,
//      at an epoch not below ours), its checkpoint in checksummed chunks, its status again;
//      restarted from scratch at most `Reseed.attemptsMax` times.
//   2. The `reseed` event (`in_place: true`), fsync'd to the node's journal.
//   3. `StorageEngine.reseedInPlace` (storage E8): refuses an image not strictly ahead of the
//      durable LSN or an authority whose history does not extend the local one (nothing
//      changes); installs crash-safely (RS1–RS4) and replaces the in-memory state in one step;
//      snapshots taken before keep their old view. A failure inside the install fails the WAL
//      (E2): nothing more is acknowledged and the next start finishes the install.
//   4. `reseed_installed`; the follow loop's next session streams from the checkpoint's LSN + 1.
// Any failure is journaled (`reseed_failed`, with the reason); the node keeps serving reads at
// its (stale, flagged) position and the follow loop asks the primary again after its delay.

import AeroCore
import AeroStorage
import Logging

public enum ReseedInPlace {
    /// Runs steps 1–4. Returns true when the engine was re-seeded.
    static func run(engine: StorageEngine, config: ServerConfig, primary: MemberConfig, reason: String,
                    journal: EventJournal, logger: Logger) async -> Bool {
        let before = (durable: engine.durableLSN, epoch: engine.currentEpoch)
        do {
            try refuseEarly(engine)
            let transfer = try await Reseed.transfer(source: primary.http, nodeID: config.id, localEpoch: before.epoch)
            try refuseEarly(engine)
            try journal.append("reseed", fields: [
                "reason": .string(reason), "in_place": .bool(true), "source": .string(primary.http.description),
                "primary": .string(transfer.primary.rawValue), "epoch": .integer(Int64(transfer.authority.epoch.rawValue)),
                "checkpoint_lsn": .integer(Int64(transfer.lsn.rawValue)), "checkpoint_bytes": .integer(Int64(transfer.bytes.count)),
                "discarded_durable_lsn": .integer(Int64(before.durable.rawValue)), "discarded_epoch": .integer(Int64(before.epoch.rawValue)),
                "attempt": .integer(Int64(transfer.attempt)),
            ], durability: .sync)
            let facts = try await engine.reseedInPlace(transfer.bytes, authority: transfer.authority)
            try journal.append("reseed_installed", fields: [
                "in_place": .bool(true), "checkpoint_lsn": .integer(Int64(facts.lsn.rawValue)), "entries": .integer(Int64(facts.entries)),
            ], durability: .sync)
            logger.notice("re-seeded in place", metadata: ["checkpoint_lsn": "\(facts.lsn)", "epoch": "\(transfer.authority.epoch)",
                                                           "entries": "\(facts.entries)", "primary": "\(transfer.primary)"])
            return true
        } catch {
            logger.error("re-seeding in place failed", metadata: ["primary": "\(primary.id)", "error": "\(error)"])
            journal.record("reseed_failed", fields: ["in_place": .bool(true), "error": .string("\(error)")], durability: .sync)
            return false
        }
    }

    /// Nothing is transferred or installed by a stopped follow loop (`stopFollowing` cancelled
    /// it: a promotion or a re-pointing checked this node's position before) or into a failed
    /// WAL (E2: the engine refuses until a restart, so each round would transfer in vain).
    private static func refuseEarly(_ engine: StorageEngine) throws {
        try Task.checkCancellation()
        if let failure = engine.failureReason {
            throw ReseedError("the WAL failed (\(failure)); a re-seed in place needs a restart first")
        }
    }
}
