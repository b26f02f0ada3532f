import AeroCore
import AeroTestSupport
import Foundation
import Testing

/// The registry of refusal ids (`RuleID`), its docs table (docs/rule-ids.md) and its trip tests
/// are one set: checked in both directions, and every row names a test that asserts its id.
@Suite struct RuleIDRegistryTests {
    struct Row {
        var id: String
        var source: String
        var testFile: String
        var testName: String
    }

    /// The rows of docs/rule-ids.md: `| \`id\` | \`source\` | when | \`test file\` \`test\` |`.
    static func rows() throws -> [Row] {
        try Repository.text("docs/rule-ids.md").split(separator: "\n").compactMap { line in
            guard line.hasPrefix("| `") else { return nil }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let spans = { (cell: String) in
                cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            }
            guard cells.count == 4, let id = spans(cells[0]).first, let source = spans(cells[1]).first else {
                Issue.record("docs/rule-ids.md: a row is not | `id` | `source` | when | `test file` `test` |: \(line)")
                return nil
            }
            let test = spans(cells[3])
            guard test.count == 2 else {
                Issue.record("docs/rule-ids.md: \(id) names no trip test as `Tests/<file>` `<test function>`")
                return nil
            }
            return Row(id: id, source: source, testFile: test[0], testName: test[1])
        }
    }

    /// The registry's case names by id, read from RuleID.swift (`case name = "id"`).
    static func caseNames() throws -> [String: String] {
        let text = try Repository.text("Sources/AeroCore/RuleID.swift")
        let regex = try NSRegularExpression(pattern: #"^\s*case (\w+) = "([^"]+)""#, options: .anchorsMatchLines)
        var names: [String: String] = [:]
        for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            names[String(text[Range(match.range(at: 2), in: text)!])] = String(text[Range(match.range(at: 1), in: text)!])
        }
        return names
    }

    @Test func theTableAndTheRegistryHoldTheSameIDs() throws {
        let rows = try Self.rows()
        let table = rows.map(\.id)
        let registry = RuleID.allCases.map(\.rawValue)
        #expect(registry.count >= 60, "the registry holds only \(registry.count) ids: is the parser broken?")
        #expect(Set(registry).count == registry.count, "an id is in the registry twice")
        #expect(Set(table).count == table.count, "docs/rule-ids.md lists an id twice: \(table)")
        for id in registry where !table.contains(id) {
            Issue.record("\(id) is in RuleID but has no row in docs/rule-ids.md")
        }
        for id in table where RuleID(rawValue: id) == nil {
            Issue.record("docs/rule-ids.md lists \(id), which is not in RuleID")
        }
        #expect(Set(try Self.caseNames().keys) == Set(registry), "RuleID.swift was not parsed as declared")
    }

    /// The id as a test may assert it: the literal, or the registry's case.
    static func mentions(_ text: Substring, id: String, caseName: String) -> Bool {
        if text.contains("\"\(id)\"") || text.contains("RuleID.\(caseName)") { return true }
        // `.caseName` where a RuleID is expected (e.g. `rule: .storageClosed`), not a longer name.
        var rest = text[...]
        while let range = rest.range(of: ".\(caseName)") {
            let next = rest[range.upperBound...].first
            if next.map({ !($0.isLetter || $0.isNumber || $0 == "_") }) ?? true { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }

    @Test func everyRowsSourceRefusesWithItAndItsTripTestAssertsIt() throws {
        let names = try Self.caseNames()
        var checked = 0
        for row in try Self.rows() {
            guard let caseName = names[row.id] else { continue }  // reported by the test above
            let source = try? Repository.text(row.source)
            #expect(source.map { Self.mentions($0[...], id: row.id, caseName: caseName) } == true,
                    "\(row.id): docs/rule-ids.md says \(row.source) refuses with it, but that file does not name it")
            guard let test = try? Repository.text(row.testFile) else {
                Issue.record("\(row.id): its trip test file \(row.testFile) does not exist")
                continue
            }
            // The test: from its `@Test` attribute (which may carry the arguments) to the next
            // test or the end of the file.
            guard let start = test.range(of: "func \(row.testName)(") else {
                Issue.record("\(row.id): \(row.testFile) has no test func \(row.testName)")
                continue
            }
            let attribute = test[..<start.lowerBound].range(of: "@Test", options: .backwards)?.lowerBound ?? start.lowerBound
            let rest = test[start.upperBound...]
            let body = test[attribute..<(rest.range(of: "@Test")?.lowerBound ?? rest.endIndex)]
            #expect(Self.mentions(body, id: row.id, caseName: caseName),
                    "\(row.id): its trip test \(row.testFile) \(row.testName) does not assert it")
            checked += 1
        }
        print("[RuleIDRegistryTests] \(checked) ids checked against their sources and trip tests")
    }

    /// Code that refuses names the registry, never a string literal: no id appears quoted in
    /// Sources outside RuleID.swift (comments may name ids; strings may not).
    @Test func noSourceSpellsAnIDAsALiteral() throws {
        let ids = RuleID.allCases.map { "\"\($0.rawValue)\"" }
        var scanned = 0
        for path in try Repository.files(under: "Sources", suffixes: [".swift"]) where !path.hasSuffix("/RuleID.swift") {
            scanned += 1
            for (number, line) in try Repository.text(path).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.trimmingCharacters(in: .whitespaces)
                guard !code.hasPrefix("//") else { continue }
                for id in ids where line.contains(id) {
                    Issue.record("\(path):\(number + 1) spells \(id) as a literal; use the RuleID case")
                }
            }
        }
        #expect(scanned >= 100, "scanned only \(scanned) Swift files under Sources")
    }
}
