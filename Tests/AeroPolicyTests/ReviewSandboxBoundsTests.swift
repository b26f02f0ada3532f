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

/// Library tables are filled on first use; no function a policy can get may see one
/// still empty (found in review: pairs handed out the original next, which does not fill).
@Suite struct LazyLibraryTablesStayInvisibleTests {
    typealias F = SandboxFixtures

    @Test(arguments: [
        "return function() local n = pairs({}) if n(math) == nil then return 'empty math' end end",
        "return function() local n = pairs(string) if n(table) == nil then return 'empty table' end end",
        "return function() local n = pairs(_G) if n(utf8) == nil then return 'empty utf8' end end",
    ])
    func theIteratorOfPairsFillsALibraryTable(text: String) {
        #expect(F.outcome(text) == .noObjection)
    }

    @Test func pairsStillIteratesAndHonoursPairsMetamethods() {
        let text = """
        return function(f)
          local keys = 0
          for _ in pairs({a = 1, b = 2}) do keys = keys + 1 end
          if keys ~= 2 then return 'plain ' .. keys end
          local seen = 0
          for k in pairs(setmetatable({}, {__pairs = function(t) return function(_, k) if not k then return 1 end end, t, nil end})) do seen = seen + k end
          if seen ~= 1 then return '__pairs ' .. seen end
          for k in pairs(math) do if k == 'floor' then return end end
          return 'math not iterated'
        end
        """
        #expect(F.outcome(text) == .noObjection)
    }
}
