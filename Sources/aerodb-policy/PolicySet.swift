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
    /// A directory without any policy is an error: a mistyped or emptied policy directory
    /// must not quietly drop a site's refusals.
    static func load(paths: [String]) throws(PolicyLoadError) -> [PolicySource] {
        let explicit = Set(paths)
        let sources = try PolicyLoader.load(paths: paths).filter { source in
            explicit.contains(source.path) || !source.path.hasSuffix(definitionFileSuffix)
        }
        for path in paths where !sources.contains(where: { $0.path == path || isInside($0.path, directory: path) }) {
            throw PolicyLoadError(path: path, message: "holds no policy (*.lua)")
        }
        return sources
    }

    /// Whether `file` was found directly inside `directory` (the loader joins them with '/').
    private static func isInside(_ file: String, directory: String) -> Bool {
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        return file.hasPrefix(base) && !file.dropFirst(base.count).contains("/")
    }
}
