// PolicySet.swift — the policy set a node runs: the `*.lua` files of its `policy_dir` (without
// `*.d.lua` definitions), loaded the same way for a decision (PromotionCoordinator) and for the
// node's status (NodeStatus: `policy_set_digest`, which POLICY-1 compares across members).
// Read from disk each time: what the status reports is what the next decision would load.

import AeroCore
import AeroPolicy
import AeroPromotion

enum PolicySet {
    static let definitionSuffix = ".d.lua"

    /// The node's policies; none without a policy_dir. Throws when the directory is unusable.
    static func load(_ config: ServerConfig) throws -> [PolicySource] {
        guard let dir = config.policyDir else { return [] }
        let sources = try PolicyLoader.load(paths: [dir]).filter { !$0.path.hasSuffix(definitionSuffix) }
        if sources.isEmpty { throw PolicyLoadError(path: dir, message: "holds no policy (*.lua)") }
        return sources
    }

    /// `PromotionEngine.policySetDigest` of what `load` gives; nil when it throws.
    static func digest(_ config: ServerConfig) -> String? {
        (try? load(config)).map(PromotionEngine.policySetDigest)
    }
}
