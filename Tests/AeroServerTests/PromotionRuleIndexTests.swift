// PromotionRuleIndexTests.swift — every PROMOTE-* rule id the server can answer has a line in
// docs/failover.md's rule table and a test under Tests/AeroServerTests that expects it
// (the project standard: a rule that can refuse has a stable id, a trip test and a docs line).
// The ids come from the registry (`RuleID`); docs/rule-ids.md holds every id of the project.
import AeroCore
import AeroTestSupport
import Foundation
import Testing

@Suite("PROMOTE-* rule index")
struct PromotionRuleIndexTests {
    static let root = Repository.root

    /// Every `PROMOTE-NAME-N` in the text.
    static func ids(in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "PROMOTE-[A-Z]+-[0-9]+")
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } })
    }

    static func text(of directory: String, suffix: String) throws -> String {
        let path = root.appendingPathComponent(directory).path
        return try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(suffix) }.sorted()
            .map { try String(contentsOfFile: path + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
    }

    @Test("each PROMOTE-* id of the registry is in the docs table and expected by a test")
    func everyRuleDocumentedAndTripped() throws {
        let sources = Set(RuleID.allCases.map(\.rawValue).filter { $0.hasPrefix("PROMOTE-") })
        #expect(sources.count >= 13, "\(sources.sorted())")
        let docs = try String(contentsOf: Self.root.appendingPathComponent("docs/failover.md"), encoding: .utf8)
        let table = docs.split(separator: "\n").filter { $0.hasPrefix("| PROMOTE-") }.joined(separator: "\n")
        // A test "expects" an id when it appears in a quoted string of a test file other than this one.
        let tests = try Self.text(of: "Tests/AeroServerTests", suffix: "Tests.swift")
            .replacingOccurrences(of: try String(contentsOfFile: #filePath, encoding: .utf8), with: "")
        let quoted = Self.ids(in: tests.split(separator: "\n").filter { $0.contains("\"PROMOTE-") || $0.contains("refused: PROMOTE-") }.joined(separator: "\n"))
        for id in sources.sorted() {
            #expect(Self.ids(in: table).contains(id), "\(id) has no row in docs/failover.md's rule table")
            #expect(quoted.contains(id), "\(id) is expected by no test in Tests/AeroServerTests")
        }
    }
}
