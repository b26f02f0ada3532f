// RepeatedEventFilter.swift — which occurrences of a repeating replication event are journaled.
//
// A replica that its primary refuses (diverged, stale epoch, history mismatch) reconnects every
// `ServerNode.refusedReconnectDelayMs` until an operator acts; both nodes would journal — and
// fsync — the same refusal every 2 s, 43,200 lines a day, burying the events that matter. The
// first occurrence of an event is journaled, then every `journalEvery`-th with its count
// (`occurrence`), so the journal still shows that it goes on. Counting, not a clock: the same
// sequence of events journals the same lines.
//
// Invariants
// 1. The first occurrence of a key is always journaled (a new refusal is never hidden).
// 2. Memory is bounded: at most `keysMax` keys; past that the counts start over, which can only
//    journal more, never less.

struct RepeatedEventFilter: Sendable {
    /// At the 2 s refused-reconnect delay: one line every 5 minutes while a refusal lasts.
    static let journalEvery = 150
    static let keysMax = 64

    private var counts: [String: Int] = [:]

    /// The occurrence number of `key` (1 for the first) when this one is to be journaled;
    /// nil when it is a repeat to skip.
    mutating func occurrence(of key: String) -> Int? {
        if counts[key] == nil && counts.count >= Self.keysMax { counts.removeAll(keepingCapacity: true) }
        let occurrence = (counts[key] ?? 0) + 1
        counts[key] = occurrence
        precondition(counts.count <= Self.keysMax)
        return occurrence == 1 || occurrence % Self.journalEvery == 0 ? occurrence : nil
    }

    /// Forgets every count: the next occurrence of any key is journaled as a first.
    mutating func reset() { counts.removeAll(keepingCapacity: true) }
}
