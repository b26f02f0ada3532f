// PromotionRules+PolicySet.swift — POLICY-1: one policy set per cluster.
//
// Each node loads its own `policy_dir`; when two members load different policies (or run a
// different engine), the same request is allowed on one candidate and refused on another: the
// decision would depend on which node was asked. In an `aerodb.facts/2` document every
// reachable node reports its `policy_set_digest` and `engine_version`; POLICY-1 refuses when
// any reachable member differs from the candidate, naming the members and their digests. An
// `aerodb.facts/1` document carries neither, so the rule passes and says so (journaled
// decisions keep replaying to the same answer). Needs REQ-1 and LIVE-1 (a reachable candidate).
import AeroCore

extension RuleContext {
    /// Digests are shown by their first 12 hex digits, as `git` shows commits.
    static let digestShownChars = 12

    static func short(_ digest: String?) -> String { digest.map { String($0.prefix(digestShownChars)) } ?? "none (policy_dir unusable)" }

    func policy1() -> RuleResult {
        // First, so that a /1 document's decision is what it was before this rule existed.
        guard facts.schema != FactsDocument.schemaVersion1 else {
            return RuleResult(id: RuleID.policy1.rawValue, passed: true,
                              message: "an aerodb.facts/1 document carries no policy set digests: nothing to compare", facts: ["$.schema": .string(facts.schema)])
        }
        let candidate: (index: Int, node: NodeFacts)
        switch reachableCandidate(RuleID.policy1.rawValue) {
        case .failure(let skipped): return skipped.result
        case .success(let value): candidate = value
        }
        let (index, node) = candidate
        var read: [String: JSONValue] = [
            Self.path(index, "policy_set_digest"): Self.string(node.policySetDigest),
            Self.path(index, "engine_version"): Self.string(node.engineVersion),
        ]
        var differing: [String] = []
        for (other, member) in facts.nodes.enumerated() where other != index && member.reachable {
            read[Self.path(other, "policy_set_digest")] = Self.string(member.policySetDigest)
            read[Self.path(other, "engine_version")] = Self.string(member.engineVersion)
            if member.policySetDigest != node.policySetDigest || member.engineVersion != node.engineVersion || member.policySetDigest == nil {
                differing.append("\(member.id) (policy set \(Self.short(member.policySetDigest)), engine \(member.engineVersion ?? "unknown"))")
            }
        }
        let mine = "candidate \(node.id) runs policy set \(Self.short(node.policySetDigest)) (engine \(node.engineVersion ?? "unknown"))"
        if node.policySetDigest == nil {
            return RuleResult(id: RuleID.policy1.rawValue, passed: false,
                              message: "\(mine): it reported no policy set, so what its policies would say is not known", facts: read)
        }
        if differing.isEmpty {
            return RuleResult(id: RuleID.policy1.rawValue, passed: true,
                              message: "every reachable member runs candidate \(node.id)'s policy set \(Self.short(node.policySetDigest)) (engine \(node.engineVersion ?? "unknown"))",
                              facts: read)
        }
        return RuleResult(id: RuleID.policy1.rawValue, passed: false,
                          message: "\(mine), but \(Self.list(differing)) differ: the decision would depend on which node was asked; give every node the same policy_dir contents and build, then ask again",
                          facts: read)
    }
}
