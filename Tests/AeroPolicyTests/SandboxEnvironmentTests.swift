// SandboxEnvironmentTests.swift — split from PolicyCheckTests.swift (one suite per file).
import AeroCore
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import AeroPolicy

@Suite struct SandboxEnvironmentTests {
    @Test func theEnvironmentIsExactlyTheAllowList() {
        let text = """
        return function()
          local names = {}
          for name in pairs(_G) do names[#names + 1] = name end
          table.sort(names)
          return table.concat(names, ' ')
        end
        """
        let expected = SandboxEnvironment.environmentNames.sorted().joined(separator: " ")
        #expect(SandboxFixtures.outcome(text) == .refused([expected]))
    }

    @Test(arguments: [
        ("string", "byte char find format gmatch gsub len lower match pack packsize rep reverse sub unpack upper"),
        ("table", "concat insert move pack remove sort unpack"),
        ("utf8", "char charpattern codepoint codes len offset"),
        ("coroutine", "close create isyieldable resume running status wrap yield"),
        ("math", "abs acos asin atan ceil cos deg exp floor fmod huge log max maxinteger min mininteger modf pi rad sin sqrt tan tointeger type ult"),
    ])
    func librariesAreExactlyTheirAllowLists(library: String, expected: String) {
        let text = """
        return function()
          local names = {}
          for name in pairs(\(library)) do names[#names + 1] = name end
          table.sort(names)
          return table.concat(names, ' ')
        end
        """
        #expect(SandboxFixtures.outcome(text) == .refused([expected]))
    }
}
