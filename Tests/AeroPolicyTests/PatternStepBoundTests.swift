import AeroCore
import CLuaShim
import Testing
@testable import AeroPolicy

/// The pattern bound counts the matcher's real work (aero_match.c: AERO_PATTERN_STEPS_MAX
/// steps per call) instead of estimating it before the call: ordinary site patterns run on
/// subjects of several KiB, pathological ones are still refused, quickly, naming the bound.
@Suite struct PatternStepBoundTests {
    typealias F = SandboxFixtures

    /// A 4 KiB subject of log-like text: timestamps, comma lists and key=value pairs.
    static let subject4KiB = "local line = '2026-11-26T10:00:00Z zone=eu-1b,eu-1c lag = 12 ' local s = line:rep(4096 // #line + 1):sub(1, 4096)"

    @Test(arguments: [
        ("local n = 0 for y, m, d in s:gmatch('(%d+)%-(%d+)%-(%d+)T') do n = n + 1 end return n", "87"),
        ("return select(2, s:gsub('(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)Z', ''))", "87"),
        ("local n = 0 for part in s:gmatch('[^,]+') do n = n + 1 end return n", "88"),
        ("local n = 0 for k, v in s:gmatch('(%w+)%s*=%s*(%w+)') do n = n + 1 end return n", "174"),
        ("return #s:match('^%s*(.-)%s*$')", "4096"),
        ("return select(2, s:gsub('%s+', ' '))", "435"),
        ("return s:find('lag = 99', 1, true) or 'absent'", "absent"),
        ("return s:find('zone=(%a+)%-(%d%a)', 4000) or 'none'", "4017"),
    ])
    func ordinaryPatternsRunOn4KiBSubjects(body: String, expected: String) {
        let text = "return function() \(Self.subject4KiB) local r = (function() \(body) end)() return tostring(r) end"
        #expect(F.outcome(text) == .refused([expected]), "\(body)")
    }

    /// The RFC 3339 parse, the comma list and the key=value pattern the review found refused
    /// by the old static estimate.
    @Test func theReviewsOrdinaryPatternsPass() {
        let text = """
        return function()
          local y, mo, d, h, mi, s = ('2026-11-26T10:00:00Z'):match('^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)Z$')
          local n = 0
          for _ in (('node-17,'):rep(112) .. 'x'):gmatch('[^,]+') do n = n + 1 end
          local k, v = ('replicas = 3; lag_max = 20'):match('(%d+)%s*=%s*(%d+)') -- no match: nil
          local k2, v2 = ('a1 = 22'):match('(%w+)%s*=%s*(%d+)')
          return table.concat({y, mo, d, h, mi, s, n, tostring(k), k2, v2}, ' ')
        end
        """
        #expect(F.outcome(text) == .refused(["2026 11 26 10 00 00 113 nil a1 22"]))
    }

    @Test(arguments: [
        "return function() return ('a'):rep(60000):match(('a-'):rep(6) .. 'b') end",
        "return function() return ('x'):rep(30):find(('x?'):rep(30) .. ('x'):rep(30)) end",
        "return function() for _ in ('a'):rep(65536):gmatch('a*a*a*b') do end end",
        "return function() return ('(('):rep(30000):gsub('%b()', '') end",
        "return function() local s = ('ab'):rep(30000) return s:match('(.-)%1%1b$') end",
        "return function() return ('a'):rep(65536):find(('[a%a%w%d]'):rep(20) .. 'b') end",
    ])
    func pathologicalPatternsAreRefusedQuickly(text: String) {
        let clock = ContinuousClock()
        let started = clock.now
        let outcome = F.outcome(text)
        let elapsed = started.duration(to: clock.now)
        guard case .failed(.runtime, let message) = outcome else {
            Issue.record("expected the pattern bound, got \(outcome)")
            return
        }
        #expect(message.contains("pattern too complex for the sandbox (more than \(AERO_PATTERN_STEPS_MAX) matcher steps"), "\(message)")
        // The bound is 500,000 steps (a few ms in release); debug and loaded CI get slack.
        #expect(elapsed < .milliseconds(1_500), "took \(elapsed)")
    }

    @Test("a pattern caught by a policy's pcall still refuses nothing else: the next call runs")
    func theBoundIsPerCall() {
        let text = """
        return function()
          local ok, err = pcall(string.match, ('a'):rep(20000), ('a-'):rep(5) .. 'b')
          if ok then return 'not refused' end
          local iterator = ('a,b,c'):gmatch('[^,]+')
          return table.concat({iterator(), iterator(), iterator()}, '')
        end
        """
        #expect(F.outcome(text) == .refused(["abc"]))
    }
}
