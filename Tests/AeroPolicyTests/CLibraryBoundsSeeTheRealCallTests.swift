// CLibraryBoundsSeeTheRealCallTests.swift — split from ReviewSandboxBoundsTests.swift (one suite per file).
import AeroCore
import Testing
@testable import AeroPolicy

/// Bounds on C library calls that a policy could otherwise slip past (found in review):
/// the bound must see the call exactly as the original C function will run it.
@Suite struct CLibraryBoundsSeeTheRealCallTests {
    typealias F = SandboxFixtures

    private func expectRefused(_ text: String, containing fragment: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        let outcome = F.outcome(text)
        guard case .failed(let kind, let message) = outcome else {
            Issue.record("expected a runtime failure, got \(outcome)", sourceLocation: sourceLocation)
            return
        }
        #expect(kind == .runtime, "\(message)", sourceLocation: sourceLocation)
        #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
    }

    /// string.rep's count is coerced from a numeric string by the original (luaL_checkinteger),
    /// so the bound must count it too: (''):rep('1e18') would otherwise loop in C forever,
    /// where no hook fires.
    @Test(arguments: [
        "return function() local s = (''):rep('2000000') end",
        "return function() local s = string.rep('', ' 0x200000 ') end",
        "return function() local s = string.rep('ab', '600000') end",
    ])
    func stringRepCountGivenAsAStringIsBounded(text: String) {
        expectRefused(text, containing: "rep")
    }

    /// In gmatch a leading '^' is no anchor but a plain character that a quantifier may
    /// follow: '^*x' backtracks over a subject of '^' (quadratic in it) and must be counted.
    @Test(arguments: [
        "return function() for _ in string.rep('^', 2000):gmatch('^*x') do end end",
        "return function() for _ in string.rep('^', 400):gmatch('^-^*x') do end end",
    ])
    func gmatchCountsALeadingCaretAsAQuantifiableCharacter(text: String) {
        expectRefused(text, containing: "pattern too complex")
    }

    /// The anchor keeps its meaning where Lua gives it one.
    @Test func anchoredPatternsStillPass() {
        let text = """
        return function()
          if not ('^^x'):find('^%^*x') then return 'find' end
          local n = 0
          for _ in ('a^b^'):gmatch('^') do n = n + 1 end
          if n ~= 2 then return 'gmatch ' .. n end
          if ('ab'):gsub('^a', '') ~= 'b' then return 'gsub' end
        end
        """
        #expect(F.outcome(text) == .noObjection)
    }
}
