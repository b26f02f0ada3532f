// PromotionFaults.swift — crash points for fault tests, in the production promotion path.
//
// `AERODB_FAULT_PROMOTE_CRASH=<point>` makes the candidate exit at once (`_exit(86)`: no
// flush, no cleanup, like a kill -9) when its promotion reaches `<point>`. Unset (the normal
// case) it does nothing. Tests (Tests/FailoverTests) set it on one process to check that a
// crash at each point leaves either the old authority or the new one.

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
}
