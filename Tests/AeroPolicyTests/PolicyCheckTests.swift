import AeroCore
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import AeroPolicy

@Suite struct PolicyCheckTests {
    private func check(_ text: String) -> [PolicyDiagnostic] {
        PolicySandbox(budget: SandboxFixtures.testBudget).check(SandboxFixtures.policy(text))
    }

    @Test func aCleanPolicyHasNoDiagnostics() {
        let text = """
        local LIMIT = 100
        helper = function(node) return node.durable_lsn end
        return function(facts)
          local lag = (facts.primary and helper(facts.primary) or 0) - helper(facts.candidate)
          counter = (counter or 0) + 1
          if lag > LIMIT then return string.format('lag %d', lag) end
          for _, node in ipairs(facts.nodes) do print(node.id, math.max(1, 2), table.concat({}), utf8.char(65)) end
        end
        """
        #expect(check(text) == [])
    }

    @Test func unknownGlobalsAreReportedWithTheirLines() {
        let text = """
        return function(facts)
          local now = os.time()

          if requier then return 'x' end
          return io.write(tostring(now)), os.clock()
        end
        """
        #expect(check(text) == [
            PolicyDiagnostic(path: "policies/p.lua", line: 2, message: "reads global 'os', which the sandbox does not provide"),
            PolicyDiagnostic(path: "policies/p.lua", line: 4, message: "reads global 'requier', which the sandbox does not provide"),
            PolicyDiagnostic(path: "policies/p.lua", line: 5, message: "reads global 'io', which the sandbox does not provide"),
        ])
    }

    @Test func globalsInNestedFunctionsAreFound() {
        let text = "local function a()\n  local function b()\n    return debug\n  end\n  return b\nend\nreturn function() return a()() end"
        #expect(check(text) == [PolicyDiagnostic(path: "policies/p.lua", line: 3,
                                                 message: "reads global 'debug', which the sandbox does not provide")])
    }

    @Test func aSyntaxErrorHasItsLine() {
        #expect(check("return function(facts)\n  if facts then\n    return 'x'\nend") == [
            PolicyDiagnostic(path: "policies/p.lua", line: 4, message: "'end' expected (to close 'function' at line 1) near <eof>"),
        ])
    }

    @Test func aChunkThatDoesNotReturnAFunctionIsReported() {
        #expect(check("return {}") == [PolicyDiagnostic(path: "policies/p.lua", line: nil,
                                                        message: "the file returned a table value, not a function")])
    }

    @Test func theTopLevelRunsUnderBudgets() {
        #expect(check("while true do end") == [PolicyDiagnostic(path: "policies/p.lua", line: 1,
                                                                message: "instruction budget of 1000000 exceeded")])
        #expect(check("\nlocal x = nil + 1") == [PolicyDiagnostic(path: "policies/p.lua", line: 2,
                                                                 message: "attempt to perform arithmetic on a nil value")])
    }

    @Test func theFunctionItselfIsNotCalled() {
        #expect(check("return function() while true do end end") == [])
    }
}

@Suite struct PolicyLoaderTests {
    private func temporaryDirectory() throws -> String {
        var template = Array("/tmp/aerodb-policy-loader-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        #expect(made)
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func write(_ path: String, _ bytes: [UInt8]) throws {
        let file = try #require(fopen(path, "wb"))
        defer { fclose(file) }
        #expect(bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) } == bytes.count)
    }

    @Test func aDirectoryContributesItsLuaFilesSortedAndFilesAreTakenAsGiven() throws {
        let directory = try temporaryDirectory()
        try write(directory + "/zeta.lua", Array("return function() end".utf8))
        try write(directory + "/alpha.lua", Array("return function() return 'a' end".utf8))
        try write(directory + "/notes.txt", Array("not a policy".utf8))
        try write(directory + "/single.policy", Array("return function() end".utf8))
        // A language-server definition file beside the policies is not a policy.
        try write(directory + "/aerodb-facts.d.lua", Array("---@meta\nlocal facts = {}".utf8))
        let sources = try PolicyLoader.load(paths: [directory, directory + "/single.policy"])
        #expect(sources.map(\.name) == ["alpha", "zeta", "single.policy"])
        #expect(sources[0].path == directory + "/alpha.lua")
        #expect(sources[0].text == "return function() return 'a' end")
    }

    @Test func problemsNameThePath() throws {
        let directory = try temporaryDirectory()
        #expect(throws: PolicyLoadError(path: directory + "/missing.lua", message: "no such file or directory")) {
            try PolicyLoader.load(paths: [directory + "/missing.lua"])
        }
        try write(directory + "/latin1.lua", [0x2D, 0x2D, 0xE9, 0x0A])
        #expect(throws: PolicyLoadError(path: directory + "/latin1.lua", message: "not valid UTF-8")) {
            try PolicyLoader.load(paths: [directory + "/latin1.lua"])
        }
        try write(directory + "/dup.lua", Array("return function() end".utf8))
        #expect(throws: PolicyLoadError(path: directory + "/dup.lua",
                                        message: "policy name \"dup\" is already used by \(directory)/dup.lua")) {
            try PolicyLoader.load(paths: [directory + "/dup.lua", directory + "/dup.lua"])
        }
    }
}

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
