// PolicyStartupCheck.swift — `serve` checks its policy_dir before it opens anything (issue 17:
// a node started with `policy_dir: /nonexistent` said nothing until a promotion was refused
// with PROMOTE-POLICY-1). The same loader as a decision (PolicySet.load) and the same static
// check as `aerodb-policy check`: a missing, unreadable or empty directory, a policy that does
// not compile or fails the check, stops the start with the file and line. PROMOTE-POLICY-1
// remains for a directory that breaks while the node runs (policies are read per decision).
import AeroCore
import AeroPolicy
import AeroPromotion

enum PolicyStartupCheck {
    /// What was loaded: how many policies and their set digest; nil without a policy_dir.
    struct Loaded: Sendable, Equatable {
        let count: Int
        let setDigest: String
    }

    static func check(_ config: ServerConfig) throws(StartupError) -> Loaded? {
        guard let dir = config.policyDir else { return nil }
        let sources: [PolicySource]
        do {
            sources = try PolicySet.load(config)
        } catch {
            throw StartupError(message: "node \(config.id): policy_dir \(dir) is unusable: \(error); fix it (or remove policy_dir) and start again")
        }
        let sandbox = PolicySandbox(budget: PolicySandbox.defaultBudget)
        let problems = sources.flatMap { sandbox.check($0) }
        if !problems.isEmpty {
            let listed = problems.prefix(Self.problemsListedMax).map(\.description).joined(separator: "; ")
            let more = problems.count > Self.problemsListedMax ? " and \(problems.count - Self.problemsListedMax) more" : ""
            throw StartupError(message: "node \(config.id): policy_dir \(dir) holds \(problems.count) policy problem(s): \(listed)\(more) (`aerodb-policy check \(dir)` lists them)")
        }
        return Loaded(count: sources.count, setDigest: PromotionEngine.policySetDigest(sources))
    }

    /// A start error names at most this many problems (the check command lists them all).
    static let problemsListedMax = 5
}
