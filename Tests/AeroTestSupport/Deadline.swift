// Deadline.swift — bounded waits in tests, on the monotonic clock.
//
// A test that waits for something polls it until it holds or a deadline passes. The deadline
// is a `ContinuousClock` instant, never a count of polls (a count stretches with the time each
// poll takes, so on a loaded machine "200 polls" is not the bound it reads as) and never
// `Date()` (wall time can jump). The bound is the caller's, in milliseconds, named with its
// reason where it is declared.
import Foundation

public enum Deadline {
    /// The default step between two polls.
    public static let pollMsDefault = 5

    /// Polls `condition` every `pollMs` until it holds (true) or `timeoutMs` passed (false).
    /// The condition is always checked once more at the deadline.
    public static func waitUntil(timeoutMs: Int, pollMs: Int = pollMsDefault,
                                 _ condition: () async throws -> Bool) async rethrows -> Bool {
        precondition(timeoutMs >= 0 && pollMs > 0, "a wait needs a bound and a step")
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(timeoutMs)
        while clock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(pollMs))
        }
        return try await condition()
    }

    /// `waitUntil` for synchronous code: sleeps the calling thread between polls.
    public static func waitUntilBlocking(timeoutMs: Int, pollMs: Int = pollMsDefault,
                                         _ condition: () throws -> Bool) rethrows -> Bool {
        precondition(timeoutMs >= 0 && pollMs > 0, "a wait needs a bound and a step")
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(timeoutMs)
        while clock.now < deadline {
            if try condition() { return true }
            usleep(UInt32(pollMs) * 1000)
        }
        return try condition()
    }
}
