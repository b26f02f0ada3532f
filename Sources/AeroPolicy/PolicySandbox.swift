// PolicySandbox.swift — runs one site policy against frozen facts in a fresh, budgeted Lua state.
import AeroCore

public struct PolicySandbox: Sendable {
    public static let defaultBudget = LuaBudget(
        instructionsMax: 1_000_000, memoryBytesMax: 16 << 20, wallTimeMsMax: 200, hookIntervalInstructions: 100)

    public let budget: LuaBudget

    public init(budget: LuaBudget = PolicySandbox.defaultBudget) {
        self.budget = budget
    }

    public func run(_ policy: PolicySource, facts: JSONValue) -> PolicyRun {
        PolicyRun(name: policy.name, outcome: .failed(kind: .load, message: "\(policy.path): the sandbox is being built"),
                  instructionsUsed: 0, memoryBytesPeak: 0, printed: [], printedTruncated: false)
    }

    public func check(_ policy: PolicySource) -> [PolicyDiagnostic] {
        [PolicyDiagnostic(path: policy.path, line: nil, message: "the sandbox is being built")]
    }
}
