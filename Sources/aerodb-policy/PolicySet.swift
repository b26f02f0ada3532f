// PolicySet.swift — the policies a command runs, loaded once before any decision.
import AeroPolicy

enum PolicySet {
    /// The budgets every command runs policies under: the sandbox's defaults, the same the
    /// live cluster uses, so a dry run fails exactly where the cluster would.
    static let budget = PolicySandbox.defaultBudget

    /// Language-server definition files (`---@meta`, such as policies/aerodb-facts.d.lua)
    /// live beside the policies but are not policies.
    static let definitionFileSuffix = ".d.lua"

    /// Loads `paths` (files, or directories of *.lua). A definition file found inside a
    /// directory is skipped; one named explicitly is loaded, and fails as a policy would.
    static func load(paths: [String]) throws(PolicyLoadError) -> [PolicySource] {
        let explicit = Set(paths)
        return try PolicyLoader.load(paths: paths).filter { source in
            explicit.contains(source.path) || !source.path.hasSuffix(definitionFileSuffix)
        }
    }
}
