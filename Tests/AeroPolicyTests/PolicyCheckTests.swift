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
