import AeroCore
import AeroPromotion
import Foundation
import AeroTestSupport

func readRepoFile(_ relativePath: String) throws -> String { try Repository.text(relativePath) }

/// A facts file from examples/facts.
func exampleFacts(_ name: String) throws -> FactsDocument {
    try FactsDocument.parse(readRepoFile("examples/facts/\(name).json"))
}

/// An example with some fields changed; the result must still be a usable document.
func example(_ name: String, _ changes: [(String, JSONValue?)]) throws -> FactsDocument {
    var json = try exampleFacts(name).json
    for (path, value) in changes { json = setting(json, path, value) }
    return try FactsDocument(json: json)
}

/// Node `index` turned unreachable: every reported field null.
func unreachableChanges(_ index: Int) -> [(String, JSONValue?)] {
    ["reachable": JSONValue.bool(false)].map { ("nodes.\(index).\($0.key)", $0.value) }
        + ["epoch", "durable_lsn", "applied_lsn", "acked_lsn", "primary_acked_lsn", "wal", "recovering", "following",
           "last_contact_ms"].map { ("nodes.\(index).\($0)", JSONValue.null) }
}

/// The ids of the rules that did not pass.
func failedRules(_ facts: FactsDocument) -> [String] {
    PromotionRules.evaluate(facts).filter { !$0.passed }.map(\.id)
}

func rule(_ id: String, _ facts: FactsDocument) -> RuleResult {
    PromotionRules.evaluate(facts).first { $0.id == id }!
}
