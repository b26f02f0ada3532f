// PolicyCheckCLITests.swift — `aerodb-policy check` as a process.
import Foundation
import Testing

@Suite struct PolicyCheckCLITests {
    @Test func shippedPoliciesAreClean() throws {
        let run = try PolicyCLI.run(["check", Shipped.policies])
        #expect(run.status == 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        #expect(run.lastLine == "\(try Shipped.policyNames().count) policies checked, 0 problems")
    }

    @Test func syntaxErrorIsReportedWithFileAndLine() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let policy = try scratch.write("bad-syntax.lua", """
            -- a policy with a syntax error on line 3
            return function(facts)
                local limit = = 10
                return nil
            end
            """)
        let run = try PolicyCLI.run(["check", policy])
        #expect(run.status == 1)
        #expect(run.stdout.contains("\(policy):"), "stdout: \(run.stdout)")
        let line = try #require(run.stdout.split(separator: "\n").first { $0.hasPrefix("error ") })
        #expect(line.contains("bad-syntax.lua:3:"), "line: \(line)")
    }

    @Test func unknownGlobalsAreReported() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let policy = try scratch.write("globals.lua", """
            return function(facts)
                for _, node in ipars(facts.nodes) do end
                if os.time() > 0 then return "late" end
                return nil
            end
            """)
        let run = try PolicyCLI.run(["check", policy])
        #expect(run.status == 1)
        #expect(run.stdout.contains("ipars"), "stdout: \(run.stdout)")
        #expect(run.stdout.contains("os"), "stdout: \(run.stdout)")
        #expect(run.stdout.contains("globals.lua:2"), "stdout: \(run.stdout)")
    }

    @Test func aGoodPolicyBesideABadOneStillFails() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try scratch.write("policies/a-good.lua", "return function(facts) return nil end\n")
        try scratch.write("policies/b-returns-a-number.lua", "return 42\n")
        let run = try PolicyCLI.run(["check", scratch.path("policies")])
        #expect(run.status == 1)
        #expect(run.stdout.contains("ok    \(scratch.path("policies"))/a-good.lua"))
        #expect(run.lastLine.hasPrefix("2 policies checked"))
    }

    @Test func unusablePathsExitTwo() throws {
        let missing = try PolicyCLI.run(["check", "no/such/policies"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no/such/policies"))

        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let empty = try PolicyCLI.run(["check", scratch.url.path])
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("no policy"))
    }
}
