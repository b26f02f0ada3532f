// PromotionTimings.swift — where a promotion's time goes, step by step, for the journal.
//
// The candidate marks the end of each step (facts, decision, record, fence, catch-up, detach,
// claim, commit, verify, history) with the monotonic clock; the outcome event
// (`promotion_promoted`, `promotion_failed`, `promotion_refused`) carries them as `steps_us`,
// so that docs/benchmarks.md's breakdown is measured from the journals of real runs. The
// clock is read for the record only: no decision and no bound depends on it.

import AeroCore
import Foundation

struct PromotionTimings: Sendable {
    /// Steps a run can mark: the decision's four and one per machine action (an undo chain
    /// adds at most one mark per undo). Bounded so a journal line stays small.
    static let stepsMax = 32

    private var lastNs: UInt64
    private(set) var steps: [(name: String, us: UInt64)] = []

    init() { lastNs = DispatchTime.now().uptimeNanoseconds }

    /// Ends the step `name` now: its time is what passed since the previous mark.
    mutating func mark(_ name: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        if steps.count < Self.stepsMax { steps.append((name, (now - lastNs) / 1_000)) }
        lastNs = now
    }

    /// `[{"step":name,"us":micros}, ...]` in the order the steps ran (a step may repeat).
    var json: JSONValue {
        .array(steps.map { .object(["step": .string($0.name), "us": .integer(Int64($0.us))]) })
    }
}
