// JUnitReport.swift — `aerodb-policy test --junit FILE`: the results as JUnit XML, the
// format CI systems (GitLab, Jenkins, GitHub reporters) read. One <testsuite> per test
// file, one <testcase> per case, a <failure> carrying expected against actual.

import AeroPromotion

/// The outcome of one case, as the report needs it.
struct PolicyTestResult: Sendable {
    let testCase: PolicyTestCase
    /// nil when the case passed; otherwise the one-line summary and the details.
    let failure: (summary: String, details: String)?
    let seconds: Double
    /// The decision the case's facts got (nil when the input was unusable) and, for a
    /// failure, what its deciding rules and policies read.
    var decision: Decision? = nil
    var factsRead: [FactsRead] = []
}

enum JUnitReport {
    static func xml(results: [PolicyTestResult]) -> String {
        var suites: [(file: String, results: [PolicyTestResult])] = []
        for result in results {
            if let last = suites.last, last.file == result.testCase.file {
                suites[suites.count - 1].results.append(result)
            } else {
                suites.append((result.testCase.file, [result]))
            }
        }
        let failures = results.filter { $0.failure != nil }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"aerodb-policy test\" tests=\"\(results.count)\" failures=\"\(failures)\" errors=\"0\" time=\"\(seconds(results))\">\n"
        for suite in suites {
            let suiteFailures = suite.results.filter { $0.failure != nil }.count
            xml += "  <testsuite name=\"\(escape(suite.file))\" tests=\"\(suite.results.count)\" failures=\"\(suiteFailures)\" errors=\"0\" skipped=\"0\" time=\"\(seconds(suite.results))\">\n"
            for result in suite.results {
                let attributes = "classname=\"\(escape(className(suite.file)))\" name=\"\(escape(result.testCase.name))\" time=\"\(format(result.seconds))\""
                if let failure = result.failure {
                    xml += "    <testcase \(attributes)>\n"
                    xml += "      <failure message=\"\(escape(failure.summary))\" type=\"PolicyTestFailure\">\(escape(failure.details, newlines: true))</failure>\n"
                    xml += "    </testcase>\n"
                } else {
                    xml += "    <testcase \(attributes)/>\n"
                }
            }
            xml += "  </testsuite>\n"
        }
        xml += "</testsuites>\n"
        return xml
    }

    /// `policies/tests/keep-a-replica.json` → `policies.tests.keep-a-replica`.
    static func className(_ file: String) -> String {
        var name = file
        if name.hasSuffix(".json") { name.removeLast(5) }
        while name.hasPrefix("./") { name.removeFirst(2) }
        return name.split(separator: "/").joined(separator: ".")
    }

    private static func seconds(_ results: [PolicyTestResult]) -> String {
        format(results.reduce(0) { $0 + $1.seconds })
    }

    private static func format(_ seconds: Double) -> String {
        let micros = Int((seconds * 1_000_000).rounded())
        let whole = micros / 1_000_000
        let fraction = String(micros % 1_000_000)
        return "\(whole)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// Escapes text for an attribute (or, with `newlines`, element content that keeps its
    /// line breaks), replacing characters XML 1.0 forbids.
    static func escape(_ text: String, newlines: Bool = false) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            case "\n": escaped += newlines ? "\n" : "&#10;"
            case "\t", "\r": escaped += "&#\(scalar.value);"
            default:
                let value = scalar.value
                let allowed = value >= 0x20 && value != 0xFFFE && value != 0xFFFF
                escaped.unicodeScalars.append(allowed ? scalar : "\u{FFFD}")
            }
        }
        return escaped
    }
}
