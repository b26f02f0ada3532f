// ChildProcess.swift — waiting for a child process without trusting Foundation to reap it.
//
// Why: on Linux, `Process.waitUntilExit()` waits for Foundation's SIGCHLD handling to reap the
// child. In a test process that also runs Swift Testing exit tests, a child has been seen to
// stay a zombie that Foundation never reaped, and `waitUntilExit()` then spun forever (a CI
// run hung on it). Every wait here is bounded: it polls Foundation's view, and if the child is
// still not reaped after `foundationGraceMs`, reaps it itself with waitpid(WNOHANG).
// Callers must take the exit status from the returned value, never from
// `process.terminationStatus` (Foundation may never learn of a child reaped here).
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How a child ended.
public struct ChildExit: Sendable, Equatable, CustomStringConvertible {
    /// The exit code, or the signal number when `signaled`.
    public let status: Int32
    /// Whether a signal ended it (e.g. SIGKILL).
    public let signaled: Bool

    public init(status: Int32, signaled: Bool) {
        self.status = status
        self.signaled = signaled
    }

    public var description: String { signaled ? "signal \(status)" : "exit \(status)" }
}

public enum ChildProcess {
    /// How long Foundation gets to notice the exit before the wait reaps the child itself.
    public static let foundationGraceMs = 200
    /// The default bound on one wait: a test child that lives longer than this is a hang.
    public static let waitMsMax = 120_000
    /// The polling step.
    static let pollMs: UInt32 = 5

    /// Waits (bounded by `timeoutMs`) for `process` to exit and returns how it ended, or nil
    /// if it still runs at the deadline.
    public static func wait(_ process: Process, timeoutMs: Int = waitMsMax) -> ChildExit? {
        precondition(timeoutMs >= 0)
        let pid = process.processIdentifier
        let clock = ContinuousClock()
        let started = clock.now
        while true {
            if !process.isRunning {
                let signaled = process.terminationReason == .uncaughtSignal
                return ChildExit(status: process.terminationStatus, signaled: signaled)
            }
            let elapsed = (clock.now - started).components
            let elapsedMs = Int(elapsed.seconds) * 1000 + Int(elapsed.attoseconds / 1_000_000_000_000_000)
            if elapsedMs >= foundationGraceMs {
                var raw: Int32 = 0
                let reaped = waitpid(pid, &raw, WNOHANG)
                if reaped == pid { return decode(raw) }
                // -1/ECHILD: Foundation reaped it meanwhile; isRunning flips on the next turn.
            }
            if elapsedMs >= timeoutMs { return nil }
            usleep(pollMs * 1000)
        }
    }

    /// Waits like `wait`, and kills the child with SIGKILL if it outlives `timeoutMs`, so a
    /// test never leaves a process behind. Returns how it ended.
    @discardableResult
    public static func waitOrKill(_ process: Process, timeoutMs: Int = waitMsMax) -> ChildExit {
        if let exit = wait(process, timeoutMs: timeoutMs) { return exit }
        kill(process.processIdentifier, SIGKILL)
        // SIGKILL cannot be caught: the child is gone within the grace period plus scheduling.
        return wait(process, timeoutMs: 10_000) ?? ChildExit(status: SIGKILL, signaled: true)
    }

    /// Sends SIGKILL (if it still runs) and waits, bounded, until it is reaped.
    public static func kill9(_ process: Process) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        waitOrKill(process, timeoutMs: 10_000)
    }

    /// Decodes a waitpid status: WIFEXITED/WEXITSTATUS and WTERMSIG, which Swift cannot
    /// import as macros.
    static func decode(_ raw: Int32) -> ChildExit {
        let signal = raw & 0x7f
        if signal == 0 { return ChildExit(status: (raw >> 8) & 0xff, signaled: false) }
        return ChildExit(status: signal, signaled: true)
    }
}
