// LagClock.swift — how old is the oldest record a replica has not applied?
//
// The primary notes when each LSN became durable (`durable(_:atMs:)`); a replica's lag in
// seconds is then now minus the time the first LSN past its applied LSN became durable, or 0
// when it has applied everything. Samples are kept in a ring of `samplesMax`: when a replica is
// further behind than the ring reaches, the oldest sample's age is reported — a lower bound, and
// the LSN lag (exact) says how far behind it really is.

import AeroCore
import Foundation

public final class LagClock: @unchecked Sendable {
    // @unchecked: `samples` is guarded by `lock`.

    /// Samples kept: one per durable advance (a group commit), so this covers at least the last
    /// `samplesMax` fsyncs.
    public static let samplesMax = 65_536

    private let lock = NSLock()
    private var samples: [(lsn: LSN, ms: UInt64)] = []
    private var start = 0

    public init() {}

    /// `lsn` became durable at `ms` (monotonic milliseconds). LSNs arrive in ascending order;
    /// repeats are ignored.
    public func durable(_ lsn: LSN, atMs ms: UInt64) {
        lock.withLock {
            if let last = samples.last, last.lsn >= lsn { return }
            samples.append((lsn, ms))
            if samples.count - start > Self.samplesMax { start += 1 }
            // Compact now and then, so the array stays within twice the bound.
            if start >= Self.samplesMax {
                samples.removeFirst(start)
                start = 0
            }
        }
    }

    /// Seconds since the oldest record past `applied` became durable (0 when none is).
    public func lagSeconds(applied: LSN, nowMs: UInt64) -> Double {
        lock.withLock {
            let live = samples[start...]
            guard let last = live.last, last.lsn > applied else { return 0 }
            // The first sample whose LSN is past `applied` (binary search: LSNs ascend); that
            // batch holds applied + 1.
            var low = live.startIndex
            var high = live.endIndex - 1
            while low < high {
                let mid = (low + high) / 2
                if live[mid].lsn > applied { high = mid } else { low = mid + 1 }
            }
            let ms = live[low].ms
            return nowMs > ms ? Double(nowMs - ms) / 1000 : 0
        }
    }
}
