// LazyLibraryTablesStayInvisibleTests.swift — split from ReviewSandboxBoundsTests.swift (one suite per file).
import AeroCore
import Testing
@testable import AeroPolicy

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
