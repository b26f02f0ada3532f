// PromotionFaults.swift — crash points for fault tests, in the production promotion path.
//
// `AERODB_FAULT_PROMOTE_CRASH=<point>` makes the candidate exit at once (`_exit(86)`: no
// flush, no cleanup, like a kill -9) when its promotion reaches `<point>`. Unset (the normal
// case) it does nothing. Tests (PromotionProcessTests and UnfenceCommandTests in
// Tests/AeroServerTests) set it on one process to check that a crash at each point leaves
// either the old authority or the new one.
//
// `AERODB_FAULT_PROMOTE_FAIL=<step>` makes one step of the candidate's promotion fail instead
// (no crash), so that the refusal it leads to can be tripped: `fence` (the fence is not sent;
// PROMOTE-STEP-1), `catch-up` (the candidate never counts as caught up, so the wait runs its
// whole bound; PROMOTE-CATCHUP-1), `verify` (the new epoch's write is reported unverified;
// PROMOTE-VERIFY-1). Unset it does nothing.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

enum PromotionFaults {
    static let environmentName = "AERODB_FAULT_PROMOTE_CRASH"
    /// The exit status of an injected crash.
    static let exitStatus: Int32 = 86

    /// The points, in the order a promotion reaches them.
    enum Point: String, CaseIterable, Sendable {
        case afterDecision = "after-decision"
        case afterFence = "after-fence"
        case afterDetach = "after-detach"
        case afterClaim = "after-claim"
        case afterAuthority = "after-authority"
        case afterPrimaryStart = "after-primary-start"
        case afterRepoint = "after-repoint"
    }

    static let armed: Point? = ProcessInfo.processInfo.environment[environmentName].flatMap(Point.init(rawValue:))

    static func reached(_ point: Point) {
        if armed == point { _exit(exitStatus) }
    }

    static let failEnvironmentName = "AERODB_FAULT_PROMOTE_FAIL"

    /// The steps that can be made to fail.
    enum Step: String, CaseIterable, Sendable {
        case fence
        case catchUp = "catch-up"
        case verify
    }

    static let failing: Step? = ProcessInfo.processInfo.environment[failEnvironmentName].flatMap(Step.init(rawValue:))

    /// True when `step` is armed to fail.
    static func fails(_ step: Step) -> Bool { failing == step }

    /// The text an injected failure adds to its message, so that no one mistakes it for a real one.
    static func injected(_ step: Step) -> String { "injected by \(failEnvironmentName)=\(step.rawValue)" }
}
