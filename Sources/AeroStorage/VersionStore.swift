// VersionStore.swift — the in-memory multi-version key-value map (MVCC).
//
// Terms: a *version* is (LSN, value or tombstone). A key's *chain* holds its versions in
// ascending LSN order. A snapshot at LSN s sees, for each key, the newest version with LSN ≤ s.
//
// Invariants (docs/invariants.md, "Storage"):
//   M1 Chains are strictly ascending in LSN; versions are only appended at the head (a key
//      touched twice by one transaction keeps its last operation; the writer
//      is single: StorageEngine appends under its lock, with LSNs it assigned in order).
//   M2 Reclamation keeps, per key, every version above `oldestNeeded` and the newest version at
//      or below it; a key whose only remaining version is a tombstone at or below it is removed.
//      `oldestNeeded` is the lowest LSN any live or future snapshot can read at, so no snapshot
//      ever loses a version it can see.
// Not thread-safe by itself: StorageEngine serialises every call under its lock.

import AeroCore

struct Version {
    var lsn: UInt64
    /// nil is a tombstone (the key was deleted at `lsn`).
    var value: [UInt8]?
}

struct VersionStore {
    private(set) var chains: [String: [Version]] = [:]
    /// Keys in ascending order, rebuilt lazily for scans after keys were added or removed.
    private var sortedKeys: [String] = []
    private var sortedKeysValid = true

    var keyCount: Int { chains.count }

    /// Appends a version (M1) and reclaims what `oldestNeeded` no longer needs (M2).
    mutating func apply(_ key: String, value: [UInt8]?, lsn: LSN, oldestNeeded: LSN) {
        // One hash lookup, chain mutated in place (the replay and commit hot path).
        var added = false
        chains[key, default: []].withAppend { chain in
            if let last = chain.last {
                precondition(last.lsn <= lsn.rawValue, "version store: LSN \(lsn) below \(last.lsn) for a key")
                if last.lsn == lsn.rawValue {
                    // The same transaction touched the key again: its last operation wins.
                    chain[chain.count - 1].value = value
                    return
                }
            } else {
                added = true
            }
            chain.append(Version(lsn: lsn.rawValue, value: value))
            if chain.count > 1 { Self.reclaim(&chain, oldestNeeded: oldestNeeded.rawValue) }
        }
        if added { sortedKeysValid = false }
    }

    /// Loads a checkpoint entry (a single version).
    mutating func load(_ key: String, value: [UInt8], lsn: LSN) {
        chains[key] = [Version(lsn: lsn.rawValue, value: value)]
        sortedKeysValid = false
    }

    static func reclaim(_ chain: inout [Version], oldestNeeded: UInt64) {
        guard chain.count > 1 else { return }
        // Index of the newest version at or below oldestNeeded: everything before it is unseen.
        var keepFrom = 0
        for i in stride(from: chain.count - 1, through: 0, by: -1) where chain[i].lsn <= oldestNeeded {
            keepFrom = i
            break
        }
        if keepFrom > 0 { chain.removeFirst(keepFrom) }
    }

    func latest(_ key: String) -> [UInt8]? {
        chains[key]?.last?.value
    }

    func get(_ key: String, at lsn: LSN) -> [UInt8]? {
        guard let chain = chains[key] else { return nil }
        for v in chain.reversed() where v.lsn <= lsn.rawValue { return v.value }
        return nil
    }

    /// The LSN of the version a snapshot at `lsn` sees (nil when absent or deleted).
    func versionLSN(_ key: String, at lsn: LSN) -> LSN? {
        guard let chain = chains[key] else { return nil }
        for v in chain.reversed() where v.lsn <= lsn.rawValue { return v.value == nil ? nil : LSN(v.lsn) }
        return nil
    }

    mutating func keysInOrder() -> [String] {
        if !sortedKeysValid {
            sortedKeys = chains.keys.sorted()
            sortedKeysValid = true
        }
        return sortedKeys
    }

    /// Keys with `prefix` visible at `lsn`, ascending, at most `limit`, starting after `after`.
    mutating func scan(prefix: String, at lsn: LSN, limit: Int, after: String? = nil) -> [(key: String, value: [UInt8])] {
        let keys = keysInOrder()
        var lo = 0
        var hi = keys.count
        let start = max(prefix, after ?? "")
        while lo < hi {
            let mid = (lo + hi) / 2
            if keys[mid] < start { lo = mid + 1 } else { hi = mid }
        }
        var result: [(key: String, value: [UInt8])] = []
        var i = lo
        while i < keys.count, result.count < limit {
            let key = keys[i]
            if !key.hasPrefix(prefix) { break }
            if key != after, let value = get(key, at: lsn) { result.append((key, value)) }
            i += 1
        }
        return result
    }

    /// Reclaims every chain (M2), removing keys deleted at or below `oldestNeeded`.
    mutating func sweep(oldestNeeded: LSN) -> Int {
        var doomed: [String] = []
        var index = chains.startIndex
        while index != chains.endIndex {
            if chains.values[index].count > 1 {
                Self.reclaim(&chains.values[index], oldestNeeded: oldestNeeded.rawValue)
            }
            let chain = chains.values[index]
            if chain.count == 1, chain[0].value == nil, chain[0].lsn <= oldestNeeded.rawValue {
                doomed.append(chains.keys[index])
            }
            chains.formIndex(after: &index)
        }
        for key in doomed { chains[key] = nil }
        if !doomed.isEmpty { sortedKeysValid = false }
        return doomed.count
    }
}

extension Array where Element == Version {
    /// Mutates in place through Dictionary's `_modify` accessor.
    mutating func withAppend(_ body: (inout [Version]) -> Void) { body(&self) }
}
