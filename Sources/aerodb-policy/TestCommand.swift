// TestCommand.swift — `aerodb-policy test`: run policy unit tests (format in
// PolicyTestFile.swift and docs/policy-guide.md) through the same engine `eval` uses.
// Prints one line per case, then exactly "N passed, N failed" as the last line.
import AeroCore
import AeroPolicy
import AeroPromotion
import ArgumentParser
import Foundation

struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run policy unit tests: each case decides a fixture with overrides and checks the outcome.",
        discussion: """
            Every PATH is a test file (JSON) or a directory whose *.json files (not recursive, \
            sorted) are test files. The format is in docs/policy-guide.md ("Testing policies").

            A failing case prints what was expected and decided, the reasons, and the facts \
            paths (with their values) that the deciding rules and policies read.

            --coverage measures the line coverage of every policy file the cases run, in the \
            same sandbox (lines that hold code count), and prints one line per file, the \
            total and the uncovered lines, before the last line.

            Examples:
              aerodb-policy test
              aerodb-policy test policies/tests --filter keep-a-replica
              aerodb-policy test policies/tests --junit /tmp/policy-tests.xml
              aerodb-policy test policies/tests --coverage-min 100 \\
                  --coverage-lcov /tmp/policies.lcov

            Exit codes: 0 every case passed (and coverage reached --coverage-min); 1 a case \
            failed, no case was found, or coverage is below --coverage-min; 2 a test path or \
            test file that cannot be used, or an unwritable --junit or --coverage-lcov file.
            """
    )

    @Argument(help: ArgumentHelp("Test files or directories of test files.", valueName: "path"))
    var paths: [String] = ["policies/tests"]

    @Option(name: .long, help: ArgumentHelp("Run only the cases whose 'FILE: NAME' contains this text.", valueName: "substring"))
    var filter: String?

    @Option(name: .long, help: ArgumentHelp("Also write the results as JUnit XML to this file.", valueName: "file"))
    var junit: String?

    @Flag(name: .long, help: "Measure and print the line coverage of the policies the cases run.")
    var coverage = false

    @Option(name: .customLong("coverage-min"), help: ArgumentHelp(
        "Exit 1 when the total line coverage is below PCT (0-100); implies --coverage.", valueName: "pct"))
    var coverageMin: Double?

    @Option(name: .customLong("coverage-lcov"), help: ArgumentHelp(
        "Also write the coverage as an LCOV tracefile (for genhtml); implies --coverage.", valueName: "file"))
    var coverageLcov: String?

    @Option(name: .long, help: "Output format: text for people, json for programs (one document).")
    var format: OutputFormat = .text

    var measuresCoverage: Bool { coverage || coverageMin != nil || coverageLcov != nil }

    func validate() throws {
        if let coverageMin, !(0...100).contains(coverageMin) {
            throw ValidationError("--coverage-min must be a percentage from 0 to 100")
        }
    }

    func run() throws {
        var cases: [PolicyTestCase] = []
        for file in try testFiles() {
            do {
                cases += try PolicyTestFile.load(path: file)
            } catch {
                throw UnusableInput(message: error.description)
            }
        }
        if let filter { cases = cases.filter { $0.identifier.contains(filter) } }

        let runner = PolicyTestRunner(coverage: measuresCoverage)
        var results: [PolicyTestResult] = []
        for testCase in cases {
            let result = runner.run(testCase)
            results.append(result)
            guard format == .text else { continue }
            if let failure = result.failure {
                print("FAIL  \(testCase.identifier)")
                print(failure.details.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { "      " + $0 }.joined(separator: "\n"))
            } else {
                print("PASS  \(testCase.identifier)")
            }
        }
        let failed = results.filter { $0.failure != nil }.count
        let report = measuresCoverage ? CoverageReport(runner.coverage()) : nil
        if let report, let coverageLcov {
            do {
                try report.lcov.write(toFile: coverageLcov, atomically: true, encoding: .utf8)
            } catch {
                throw UnusableInput(message: "--coverage-lcov \(coverageLcov): cannot write the tracefile: \(error.localizedDescription)")
            }
        }
        if let junit {
            do {
                try JUnitReport.xml(results: results).write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                throw UnusableInput(message: "--junit \(junit): cannot write the report: \(error.localizedDescription)")
            }
        }
        switch format {
        case .text:
            if let report { print(report.text, terminator: "") }
            print("\(results.count - failed) passed, \(failed) failed")
        case .json:
            print(TestJSONReport.json(results: results, coverage: report).prettyJSON)
        }
        if let report, let coverageMin, !report.reaches(coverageMin) {
            StandardError.write("aerodb-policy: line coverage \(CoverageReport.percent(report.covered, report.total)) is below --coverage-min \(coverageMin)%")
            throw ExitCode(ExitStatus.refused)
        }
        if results.isEmpty {
            StandardError.write("aerodb-policy: no test case found in \(paths.joined(separator: ", "))"
                + (filter.map { " matching \"\($0)\"" } ?? ""))
            throw ExitCode(ExitStatus.refused)
        }
        if failed > 0 { throw ExitCode(ExitStatus.refused) }
    }

    /// The test files named by `paths`: files as given, directories' *.json sorted by name.
    private func testFiles() throws(UnusableInput) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw UnusableInput(message: "\(path): no such test file or directory")
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: path)
            } catch {
                throw UnusableInput(message: "\(path): cannot read the directory")
            }
            let base = path.hasSuffix("/") ? path : path + "/"
            files += names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                .map { base + $0 }
        }
        return files
    }
}

/// Runs cases, caching fixtures and policy sets (many cases share them).
final class PolicyTestRunner {
    private var fixtures: [String: Result<JSONValue, UnusableInput>] = [:]
    private var policySets: [[String]: Result<[PolicySource], UnusableInput>] = [:]
    /// Records the facts every policy run reads (for failures) and, when asked, line
    /// coverage; neither changes a decision (PolicyTooling.swift).
    private let tooling: PolicyTooling
    private let sandbox: PolicySandbox
    /// Set by evaluate for the case being run.
    private var decision: Decision?
    private var factsRead: [FactsRead] = []

    init(coverage: Bool = false) {
        tooling = PolicyTooling(coverage: coverage, factsReads: true)
        sandbox = PolicySandbox(budget: PolicySet.budget, tooling: tooling)
    }

    func coverage() -> [PolicyCoverageFile] { tooling.coverage() }

    func run(_ testCase: PolicyTestCase) -> PolicyTestResult {
        let start = ContinuousClock.now
        decision = nil
        factsRead = []
        let failure = evaluate(testCase)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return PolicyTestResult(testCase: testCase, failure: failure, seconds: seconds, decision: decision, factsRead: factsRead)
    }

    private func evaluate(_ testCase: PolicyTestCase) -> (summary: String, details: String)? {
        let expected = "expected: \(testCase.expectation)"
        func unusable(_ message: String) -> (summary: String, details: String) {
            ("\(expected); actual: unusable input", "\(expected)\nactual:   unusable input: \(message)")
        }
        var json: JSONValue
        switch fixture(testCase.factsPath) {
        case .success(let value): json = value
        case .failure(let error): return unusable(error.message)
        }
        for override in testCase.overrides {
            do {
                try override.apply(to: &json)
            } catch {
                return unusable(error.description)
            }
        }
        let document: FactsDocument
        do {
            document = try FactsDocument(json: json)
        } catch {
            return unusable("facts \(testCase.factsPath) after overrides: \(EvalInputs.describe(error))")
        }
        let sources: [PolicySource]
        switch policies(testCase.policyPaths) {
        case .success(let value): sources = value
        case .failure(let error): return unusable(error.message)
        }
        _ = tooling.takeFactsReads()
        let decision = PromotionEngine(policies: sources, sandbox: sandbox).decide(document)
        self.decision = decision
        let policyReads = tooling.takeFactsReads()
        if PolicyTestRunner.matches(decision, testCase.expectation) { return nil }
        factsRead = FactsReadReport.reads(decision, expectation: testCase.expectation, facts: json, policyReads: policyReads)

        let actualDecision = decision.allowed ? "allow" : "refuse"
        var details = "\(expected)\nactual:   \(actualDecision)"
        for reason in decision.reasons {
            details += "\n          \(reason.source): \(reason.message)"
        }
        // What the policies printed helps to see why; it is shown only for failing cases.
        for run in decision.policies {
            for line in run.printed { details += "\nprint:    [\(run.name)] \(line)" }
            if run.printedTruncated { details += "\nprint:    [\(run.name)] (truncated)" }
        }
        if !factsRead.isEmpty { details += "\n" + FactsReadReport.text(factsRead) }
        return ("\(expected); actual: \(actualDecision)", details)
    }

    static func matches(_ decision: Decision, _ expectation: PolicyTestExpectation) -> Bool {
        switch expectation.decision {
        case .allow:
            return decision.allowed
        case .refuse:
            guard !decision.allowed else { return false }
            let candidates = decision.reasons.filter { expectation.source == nil || $0.source == expectation.source }
            guard !candidates.isEmpty else { return false }
            guard let substring = expectation.reasonSubstring else { return true }
            return candidates.contains { $0.message.contains(substring) }
        }
    }

    private func fixture(_ path: String) -> Result<JSONValue, UnusableInput> {
        if let cached = fixtures[path] { return cached }
        let result: Result<JSONValue, UnusableInput>
        do {
            let text = try InputFiles.readText(path: path, bytesMax: InputFiles.factsBytesMax)
            do {
                result = .success(try JSONParser.parse(text))
            } catch {
                result = .failure(UnusableInput(message: "facts \(path): not valid JSON: \(error.description)"))
            }
        } catch {
            result = .failure(UnusableInput(message: "facts \(error.message)"))
        }
        fixtures[path] = result
        return result
    }

    private func policies(_ paths: [String]) -> Result<[PolicySource], UnusableInput> {
        if let cached = policySets[paths] { return cached }
        let result: Result<[PolicySource], UnusableInput>
        do {
            result = .success(try PolicySet.load(paths: paths))
        } catch {
            result = .failure(UnusableInput(message: "policy \(error.description)"))
        }
        policySets[paths] = result
        return result
    }
}
