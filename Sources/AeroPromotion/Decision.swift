// Decision.swift — the result of one promotion decision and its explanation.
//
// A decision is a value: the same facts and the same policies give an equal `Decision` and a
// byte-identical `json.canonicalJSON`. The explanation answers "why was promotion allowed or
// denied?" without access to anything but this value: every native rule with the facts it
// read, every policy with its outcome and budget use, the digests of the inputs and the
// engine version.
//
// Invariants (docs/invariants.md, "Promotion"), both preconditions of `Decision.init`:
//   P7 Allowed exactly when every native rule passed and no policy refused or failed: a policy
//      can only add refusals.
//   P8 A refusal has at least one reason, an allowance none; native reasons first in rule
//      order, then policies in name order.
import AeroCore
import AeroPolicy

/// One reason a promotion was refused, cited as `rule:ID` or `policy:NAME`.
public struct Reason: Sendable, Equatable, CustomStringConvertible {
    public let source: String
    public let message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
    var json: JSONValue { .object(["source": .string(source), "message": .string(message)]) }
}

/// One native rule's verdict on one facts document.
public struct RuleResult: Sendable, Equatable {
    public let id: String
    public let passed: Bool
    /// False when the rule could not be evaluated because a rule it depends on failed (its
    /// message says which); such a rule counts as failed but is not repeated in `reasons`.
    public let evaluated: Bool
    public let message: String
    /// The facts the rule read: JSON path (e.g. `$.nodes[1].durable_lsn`) to value.
    public let facts: [String: JSONValue]

    public init(id: String, passed: Bool, evaluated: Bool = true, message: String, facts: [String: JSONValue]) {
        precondition(evaluated || !passed, "a rule that was not evaluated cannot pass")
        self.id = id
        self.passed = passed
        self.evaluated = evaluated
        self.message = message
        self.facts = facts
    }

    public var json: JSONValue {
        .object([
            "id": .string(id), "passed": .bool(passed), "message": .string(message),
            "facts": .object(facts),
        ])
    }
}

/// A promotion decision with its complete explanation.
public struct Decision: Sendable, Equatable {
    /// True exactly when every native rule passed and no policy refused or failed.
    public let allowed: Bool
    /// Why not: failed native rules first (in rule order), then policies (in name order).
    /// Empty when allowed.
    public let reasons: [Reason]
    /// Every native rule, in `PromotionRules.allIDs` order.
    public let rules: [RuleResult]
    /// Every policy, in name order, including those run after a native rule had refused.
    public let policies: [PolicyRun]
    /// The facts the decision was made from (the digests below are computed from them when
    /// asked: a decision inside a benchmark, explore grid or test case never pays for them).
    private let facts: FactsDocument
    /// The facts digest: what an operator approves (`--expect-facts-digest`), SHA-256 of the
    /// decision's basis (DecisionDigest.swift: cluster shape, reachability, labels, policy
    /// sets, the request and the outcome; no LSNs, no clock). One name everywhere.
    public var factsDigest: String { DecisionDigest.digest(digestBasis) }
    /// The document digest: SHA-256 of the whole facts document in canonical JSON (LSNs and
    /// captured_at included), to identify the exact document, never to approve a promotion.
    public var documentDigest: String { facts.digest }
    /// The basis `factsDigest` is computed from (recorded, so a refusal can name what changed).
    public var digestBasis: JSONValue {
        DecisionDigest.basis(facts, policySetDigest: policySetDigest, engineVersion: engineVersion,
                             allowed: allowed, reasonSources: reasons.map(\.source))
    }
    /// SHA-256 identifying the policy set (see `PromotionEngine.policySetDigest`).
    public let policySetDigest: String
    public let engineVersion: String

    public init(
        facts: FactsDocument, rules: [RuleResult], policies: [PolicyRun], policySetDigest: String,
        engineVersion: String = AeroVersion.string
    ) {
        var reasons: [Reason] = []
        for rule in rules where !rule.passed && rule.evaluated {
            reasons.append(Reason(source: "rule:\(rule.id)", message: rule.message))
        }
        // Invariant P8: a failed rule always yields at least one reason, even if every failed
        // rule was a consequence of another (which cannot happen with the shipped rules).
        if reasons.isEmpty, let first = rules.first(where: { !$0.passed }) {
            reasons.append(Reason(source: "rule:\(first.id)", message: first.message))
        }
        for run in policies {
            switch run.outcome {
            case .noObjection:
                break
            case .refused(let messages):
                // The sandbox never reports an empty refusal; should one arrive, it still refuses.
                for message in messages.isEmpty ? ["refused without giving a reason"] : messages {
                    reasons.append(Reason(source: "policy:\(run.name)", message: message))
                }
            case .failed(let kind, let message):
                reasons.append(Reason(source: "policy:\(run.name)", message: "policy failed (\(kind.rawValue)): \(message)"))
            }
        }
        self.allowed = rules.allSatisfy(\.passed) && !policies.contains { $0.outcome.refuses }
        precondition(allowed == reasons.isEmpty, "a refusal always has a reason, an allowance none")
        self.reasons = reasons
        self.rules = rules
        self.policies = policies
        self.facts = facts
        self.policySetDigest = policySetDigest
        self.engineVersion = engineVersion
    }

    /// The explanation as one JSON document (the shape `aerodb-policy eval --format json` prints).
    public var json: JSONValue {
        .object([
            "decision": .string(allowed ? "allow" : "refuse"),
            "reasons": .array(reasons.map(\.json)),
            "rules": .array(rules.map(\.json)),
            "policies": .array(policies.map(Self.policyJSON)),
            "facts_digest": .string(factsDigest),
            "document_digest": .string(documentDigest),
            "policy_set_digest": .string(policySetDigest),
            "engine_version": .string(engineVersion),
        ])
    }

    /// The last `printed` line in JSON when a policy's print output was cut at its bound.
    public static let printedTruncatedMarker = "[print output truncated]"

    static func policyJSON(_ run: PolicyRun) -> JSONValue {
        var members: [String: JSONValue] = [
            "name": .string(run.name),
            "instructions_used": .integer(run.instructionsUsed),
            "memory_bytes_peak": .integer(Int64(run.memoryBytesPeak)),
            // A cut print stream ends with a marker line, so the JSON shape stays fixed.
            "printed": .array((run.printed + (run.printedTruncated ? [printedTruncatedMarker] : [])).map(JSONValue.string)),
        ]
        switch run.outcome {
        case .noObjection:
            members["outcome"] = .string("no_objection")
            members["reasons"] = .array([])
        case .refused(let messages):
            members["outcome"] = .string("refused")
            members["reasons"] = .array(messages.map(JSONValue.string))
        case .failed(let kind, let message):
            members["outcome"] = .string("failed")
            members["reasons"] = .array([])
            members["failure"] = .object(["kind": .string(kind.rawValue), "message": .string(message)])
        }
        return .object(members)
    }

    /// Text a policy wrote, made safe to print on a terminal: control characters (C0, DEL, C1)
    /// other than tab (print's own separator; harmless) are escaped (`\n`, `\r`, else `\u{XX}`), so a reason can neither start a line of
    /// its own (a fake `{"decision":"allow"}`) nor send terminal escape sequences. JSON output
    /// needs no such step (the encoder escapes them).
    public static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\t") || (0x7f...0x9f).contains(scalar.value)
    }

    /// For people: the decision first, then one line per reason.
    public var text: String {
        var lines = [allowed ? "ALLOWED: every native rule passed and no policy objected" : "REFUSED: \(reasons.count) reason(s)"]
        for reason in reasons { lines.append("  \(reason.source): \(Self.printable(reason.message))") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text`, then every check: each rule with the facts it read, each policy with its
    /// outcome, budget use and printed lines, and the digests and version.
    public var explainText: String {
        var lines = [text, "rules:"]
        for rule in rules {
            let verdict = rule.passed ? "pass" : (rule.evaluated ? "FAIL" : "skip")
            lines.append("  [\(verdict)] \(rule.id): \(rule.message)")
            for key in rule.facts.keys.sorted(by: JSONValue.utf8Precedes) {
                lines.append("      \(key) = \(rule.facts[key]!.canonicalJSON)")
            }
        }
        lines.append(policies.isEmpty ? "policies: none" : "policies:")
        for run in policies {
            let verdict: String
            switch run.outcome {
            case .noObjection: verdict = "no objection"
            case .refused(let messages): verdict = "REFUSED: " + messages.map(Self.printable).joined(separator: "; ")
            case .failed(let kind, let message): verdict = "FAILED (\(kind.rawValue)): \(Self.printable(message))"
            }
            lines.append("  [\(run.name)] \(verdict)")
            lines.append("      instructions \(run.instructionsUsed), memory peak \(run.memoryBytesPeak) bytes")
            for line in run.printed { lines.append("      print: \(Self.printable(line))") }
            if run.printedTruncated { lines.append("      print: (truncated)") }
        }
        lines.append("facts digest:      \(factsDigest)  (approve with --expect-facts-digest)")
        lines.append("document digest:   \(documentDigest)  (the whole document; not for approval)")
        lines.append("policy set digest: \(policySetDigest)")
        lines.append("engine version:    \(engineVersion)")
        return lines.joined(separator: "\n") + "\n"
    }
}
