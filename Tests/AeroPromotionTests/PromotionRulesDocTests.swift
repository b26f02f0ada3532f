import AeroPromotion
import Testing

/// docs/promotion-rules.md and the code name the same rules.
@Suite struct PromotionRulesDocTests {
    /// The lines of the section under `## title`, up to the next `## ` heading.
    func section(_ title: String, of text: String) -> [Substring] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: Substring("## \(title)")) else { return [] }
        let rest = lines[(start + 1)...]
        let end = rest.firstIndex { $0.hasPrefix("## ") } ?? rest.endIndex
        return Array(rest[..<end])
    }

    func isRuleID(_ text: Substring) -> Bool {
        let parts = text.split(separator: "-")
        return parts.count == 2 && parts[0].allSatisfy { $0.isUppercase } && parts[1].allSatisfy(\.isNumber) && !parts[1].isEmpty
    }

    @Test func failureTableNamesExactlyTheRulesInTheCode() throws {
        let text = try readRepoFile("docs/promotion-rules.md")
        var tableIDs: [String] = []
        for line in section("Failure cases", of: text) where line.hasPrefix("| ") {
            let firstCell = line.dropFirst(2).prefix { $0 != "|" }.trimmingCharacters(in: .whitespaces)
            if isRuleID(Substring(firstCell)) { tableIDs.append(firstCell) }
        }
        #expect(!tableIDs.isEmpty)
        #expect(Set(tableIDs) == Set(PromotionRules.allIDs))
        // The table lists rules in evaluation order.
        var ordered: [String] = []
        for id in tableIDs where ordered.last != id { ordered.append(id) }
        #expect(ordered == PromotionRules.allIDs)
    }

    @Test func everyRuleHasItsOwnHeading() throws {
        let text = try readRepoFile("docs/promotion-rules.md")
        let headings = section("The rules", of: text).filter { $0.hasPrefix("### ") }
            .map { String($0.dropFirst(4).prefix { $0 != " " }) }
        #expect(headings == PromotionRules.allIDs)
    }
}
