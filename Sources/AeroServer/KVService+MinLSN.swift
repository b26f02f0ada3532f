// KVService+MinLSN.swift — `min_lsn=N` reads (KVService rule 3): served only at an applied
// LSN >= N. The wait ends at a monotonic deadline `timeouts.min_lsn_wait_ms` after it began
// (never a count of polls, which a loaded machine stretches), then refuses with
// REPL-STALE-READ naming how long it measured.

import AeroCore
import AeroStorage

extension KVService {
    /// Poll interval while a `min_lsn` read waits; the deadline, not the polls, bounds the wait.
    static let minLSNPollMs: UInt64 = 1

    func waitFor(_ minLSN: LSN?) async -> Refusal? {
        guard let minLSN, minLSN > engine.appliedLSN else { return nil }
        let startedMs = CommitWaiters.monotonicMs()
        let deadlineMs = startedMs + config.timeouts.minLSNWaitMs
        while !Task.isCancelled {
            let nowMs = CommitWaiters.monotonicMs()
            if nowMs >= deadlineMs { break }
            try? await Task.sleep(for: .milliseconds(min(Self.minLSNPollMs, deadlineMs - nowMs)))
            if engine.appliedLSN >= minLSN { return nil }
        }
        if engine.appliedLSN >= minLSN { return nil }
        return .staleRead(node: config.id, minLSN: minLSN, appliedLSN: engine.appliedLSN,
                          waitedMs: CommitWaiters.monotonicMs() - startedMs)
    }
}
