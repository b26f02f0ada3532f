// PromotionEngine.swift — decides one promotion from frozen facts: native rules, then every
// site policy in its own fresh sandbox.
//
// Pure: `decide` reads no clock, no file and no network; its only inputs are the facts
// document and the policy texts given at init. (Policies run under a wall-clock budget as
// their last resort; a policy that hits it fails, which can only refuse.) The final decision
// is made here, in Swift: a policy can add a refusal, never remove one.
//
// Invariants (docs/invariants.md, "Promotion"):
//   P9  Deterministic: the same facts and policies give an equal decision and a byte-identical
//       canonical explanation, whatever order the policies came in (they are sorted here).
//   P11 `decide` reads no clock, no file and no network (above).
import AeroCore
import AeroPolicy

public struct PromotionEngine: Sendable {
    /// The policies, sorted by name (UTF-8 byte order): the order they run and are reported in.
    public let policies: [PolicySource]
    public let sandbox: PolicySandbox
    /// See `PromotionEngine.policySetDigest(_:)`.
    public let policySetDigest: String

    /// Policy names must be unique, since reasons cite them as `policy:NAME`; duplicate names
    /// are a programmer error (callers that read directories check for them first).
    public init(policies: [PolicySource], sandbox: PolicySandbox = PolicySandbox()) {
        let sorted = policies.sorted { JSONValue.utf8Precedes($0.name, $1.name) }
        for (earlier, later) in zip(sorted, sorted.dropFirst()) {
            precondition(earlier.name != later.name, "two policies are named \(later.name)")
        }
        self.policies = sorted
        self.sandbox = sandbox
        self.policySetDigest = Self.policySetDigest(sorted)
    }

    /// SHA-256 over the canonical JSON of `[{"name":…,"text":…}, …]` sorted by name: it
    /// identifies what the policies say, not where their files were.
    public static func policySetDigest(_ policies: [PolicySource]) -> String {
        let sorted = policies.sorted { JSONValue.utf8Precedes($0.name, $1.name) }
        let json = JSONValue.array(sorted.map { .object(["name": .string($0.name), "text": .string($0.text)]) })
        return Digest.sha256Hex(json.canonicalJSON.utf8)
    }

    /// Decides from `facts`. Every native rule and every policy runs and is reported, whatever
    /// the others said; the decision allows only if all rules pass and no policy objects.
    public func decide(_ facts: FactsDocument) -> Decision {
        let rules = PromotionRules.evaluate(facts)
        // Encoded for Lua once per decision (not at all without policies), then given to
        // every policy's fresh sandbox.
        var runs: [PolicyRun] = []
        if !policies.isEmpty {
            let policyFacts = PolicyFacts(facts.json)
            runs = sandbox.runAll(policies, facts: policyFacts)
        }
        return Decision(facts: facts, rules: rules, policies: runs, policySetDigest: policySetDigest)
    }
}
