// FactsReadReport.swift — what a failing test case's deciding rules and policies read: the
// facts paths with their values, so a failure explains itself (as OPA's --var-values).
// Rules report their facts themselves (RuleResult.facts); a policy's reads are recorded by
// the sandbox's facts proxies (AeroPolicy's PolicyTooling).
import AeroCore
import AeroPolicy
import AeroPromotion

/// The facts one rule or policy read, with their values in the case's facts.
struct FactsRead: Sendable {
    let source: String
    /// Path and value (canonical JSON, or "nil (absent)"), in the order they were read.
    let values: [(path: String, value: String)]
    let truncated: Bool
}

enum FactsReadReport {
    /// A container value is shown up to this many bytes of its canonical JSON.
    static let valueBytesMax = 120

    /// The sources whose reads explain the failure: every rule that failed, every policy that
    /// refused or failed and, when the case expected a refusal from a source that did not
    /// give one, that source; when nothing refused, every policy.
    static func sources(_ decision: Decision, _ expectation: PolicyTestExpectation) -> [String] {
        var sources: [String] = []
        for reason in decision.reasons where !sources.contains(reason.source) { sources.append(reason.source) }
        if let expected = expectation.source, !sources.contains(expected) { sources.append(expected) }
        if decision.allowed, expectation.source == nil { sources += decision.policies.map { "policy:\($0.name)" } }
        return sources
    }

    static func reads(_ decision: Decision, expectation: PolicyTestExpectation, facts: JSONValue,
                      policyReads: [String: PolicyFactsReads]) -> [FactsRead] {
        sources(decision, expectation).compactMap { source in
            if source.hasPrefix("rule:") {
                guard let rule = decision.rules.first(where: { "rule:\($0.id)" == source }) else { return nil }
                let paths = rule.facts.keys.sorted(by: JSONValue.utf8Precedes)
                return FactsRead(source: source, values: paths.map { ($0, render(rule.facts[$0]!)) }, truncated: false)
            }
            guard let reads = policyReads[String(source.dropFirst("policy:".count))] else { return nil }
            let leaves = reads.paths.filter { path in
                !reads.paths.contains { $0.count > path.count && $0.hasPrefix(path) && ($0.dropFirst(path.count).first == "." || $0.dropFirst(path.count).first == "[") }
            }
            return FactsRead(source: source, values: leaves.map { ($0, value(at: $0, in: facts)) }, truncated: reads.truncated)
        }
    }

    static func value(at pathText: String, in document: JSONValue) -> String {
        guard let path = try? JSONPath(parsing: pathText) else { return "?" }
        var node = document
        for step in path.steps {
            switch (step, node) {
            case (.member(let name), .object(let members)):
                guard let child = members[name] else { return "nil (absent)" }
                node = child
            case (.index(let index), .array(let elements)):
                guard index >= 0, index < elements.count else { return "nil (absent)" }
                node = elements[index]
            default:
                return "nil (absent)"
            }
        }
        return render(node)
    }

    static func render(_ value: JSONValue) -> String {
        if case .null = value { return "nil (null)" }
        let text = value.canonicalJSON
        guard text.utf8.count > valueBytesMax else { return text }
        return String(decoding: text.utf8.prefix(valueBytesMax), as: UTF8.self) + "…"
    }

    static func text(_ reads: [FactsRead]) -> String {
        var lines: [String] = []
        for read in reads {
            lines.append("facts read by \(read.source):" + (read.values.isEmpty ? " none" : ""))
            for entry in read.values { lines.append("  \(entry.path) = \(entry.value)") }
            if read.truncated { lines.append("  (more reads than recorded)") }
        }
        return lines.joined(separator: "\n")
    }
}
