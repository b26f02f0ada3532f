// Snapshot.swift — MVCC read views of the engine's version store.
//
// Invariants (docs/invariants.md, "Storage"):
//   E1 A snapshot is taken at durableLSN (`snapshotLocked`), so it never sees a record that is
//      not durable, and it never changes.
//   M2 Reclamation keeps every version a live or future snapshot can read: live snapshots are
//      counted by LSN, and `oldestNeededLocked` is the lowest LSN any of them (or a future
//      one, at durableLSN) reads at.
//   E8 A re-seed in place starts a new store generation; a snapshot of an older generation
//      keeps reading the store it was taken from (`retiredStores`) until the last of them is
//      released.

import AeroCore
import Foundation

extension StorageEngine {
    /// A consistent read view as of the current durable LSN. It never changes; release it by
    /// dropping the reference (versions it needs are kept until then).
    public func snapshot() -> Snapshot {
        locked { snapshotLocked() }
    }

    /// Registers and returns a snapshot at durableLSN (E1). Caller holds the lock.
    func snapshotLocked() -> Snapshot {
        let lsn = commits.durableLSN
        snapshotCounts[lsn.rawValue, default: 0] += 1
        return Snapshot(engine: self, lsn: lsn, generation: generation)
    }

    /// Reads `key` at the current durable LSN.
    public func get(_ key: String) -> [UInt8]? {
        locked { store.get(key, at: commits.durableLSN) }
    }

    fileprivate func read(_ key: String, at lsn: LSN, generation: UInt64) -> [UInt8]? {
        locked {
            if generation == self.generation { return store.get(key, at: lsn) }
            guard let retired = retiredStores[generation] else { preconditionFailure("snapshot of a released store generation \(generation)") }
            return retired.store.get(key, at: lsn)
        }
    }

    fileprivate func scan(prefix: String, at lsn: LSN, limit: Int, after: String?, generation: UInt64) -> [(key: String, value: [UInt8])] {
        locked {
            if generation == self.generation { return store.scan(prefix: prefix, at: lsn, limit: limit, after: after) }
            guard retiredStores[generation] != nil else { preconditionFailure("snapshot of a released store generation \(generation)") }
            return retiredStores[generation]!.store.scan(prefix: prefix, at: lsn, limit: limit, after: after)
        }
    }

    fileprivate func release(_ lsn: LSN, generation: UInt64) {
        locked {
            if generation != self.generation {
                guard let retired = retiredStores[generation], retired.snapshots > 0 else { preconditionFailure("snapshot released twice") }
                retiredStores[generation] = retired.snapshots == 1 ? nil : (retired.store, retired.snapshots - 1)
                return
            }
            let n = snapshotCounts[lsn.rawValue, default: 0]
            precondition(n > 0, "snapshot released twice")
            snapshotCounts[lsn.rawValue] = n == 1 ? nil : n - 1
        }
    }

    /// The lowest LSN a live or future snapshot can read at (M2). Caller holds the lock.
    func oldestNeededLocked() -> LSN {
        let durable = commits.durableLSN
        let oldestSnapshot = snapshotCounts.keys.min().map { LSN($0) } ?? durable
        return min(oldestSnapshot, durable)
    }

    /// Version chain lengths (tests check reclamation, M2).
    func versionChainLengthsForTesting() -> [Int] {
        locked { store.chains.values.map(\.count) }
    }
}

/// A read view as of one committed LSN. Never changes; released on deinit.
public final class Snapshot: @unchecked Sendable {
    public let lsn: LSN
    private let engine: StorageEngine
    /// The store generation it reads (E8: a re-seed in place starts a new one).
    private let generation: UInt64

    fileprivate init(engine: StorageEngine, lsn: LSN, generation: UInt64) {
        self.engine = engine
        self.lsn = lsn
        self.generation = generation
    }

    deinit { engine.release(lsn, generation: generation) }

    public func get(_ key: String) -> [UInt8]? { engine.read(key, at: lsn, generation: generation) }

    /// Keys starting with `prefix`, ascending, at most `limit`, after `after` when given.
    public func scan(prefix: String, limit: Int = Int.max, after: String? = nil) -> [(key: String, value: [UInt8])] {
        engine.scan(prefix: prefix, at: lsn, limit: limit, after: after, generation: generation)
    }
}
