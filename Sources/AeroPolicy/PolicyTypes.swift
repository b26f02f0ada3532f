// PolicyTypes.swift — the values a policy run produces. A policy can only refuse; every
// way it can go wrong is a refusal too (fail closed), with the kind of failure named.
import AeroCore

/// One site policy as text: a Lua 5.4 file that returns a function.
public struct PolicySource: Sendable, Equatable {
    /// File stem, e.g. "max-replication-lag"; cited as "policy:<name>".
    public let name: String
    /// As given, for messages ("path:line: ...").
    public let path: String
    public let text: String

    public init(name: String, path: String, text: String) {
        self.name = name
        self.path = path
        self.text = text
    }
}

/// Why a policy counts as failed (and therefore as refusing).
public enum PolicyFailureKind: String, Sendable {
    /// The text does not compile, or its top level fails or does not return a function.
    case load
    /// The function raised an error.
    case runtime
    /// The function returned something other than nil, a non-empty string, or a list of
    /// non-empty strings.
    case wrongReturnType
    case instructionBudget
    case memoryBudget
    case timeBudget
}

/// What one policy said about one decision.
public enum PolicyOutcome: Sendable, Equatable {
    case noObjection
    /// Non-empty reasons, in the order the policy returned them.
    case refused([String])
    /// The policy could not give an answer; counts as a refusal. `message` names
    /// `path:line` where Lua knew it.
    case failed(kind: PolicyFailureKind, message: String)

    /// True unless the policy raised no objection.
    public var refuses: Bool {
        if case .noObjection = self { return false }
        return true
    }
}

/// One policy run against one facts document, with what it used.
public struct PolicyRun: Sendable, Equatable {
    public let name: String
    public let outcome: PolicyOutcome
    /// VM instructions, counted in steps of the budget's hook interval (deterministic).
    public let instructionsUsed: Int64
    /// Most bytes the policy's Lua state held at once (deterministic for the same inputs).
    public let memoryBytesPeak: Int
    /// Lines the policy printed, bounded by `PolicySandbox.printedLinesMax` and
    /// `PolicySandbox.printedBytesMax`; never written to stdout.
    public let printed: [String]
    /// True when print output was cut at a bound.
    public let printedTruncated: Bool

    public init(name: String, outcome: PolicyOutcome, instructionsUsed: Int64, memoryBytesPeak: Int,
                printed: [String], printedTruncated: Bool) {
        self.name = name
        self.outcome = outcome
        self.instructionsUsed = instructionsUsed
        self.memoryBytesPeak = memoryBytesPeak
        self.printed = printed
        self.printedTruncated = printedTruncated
    }
}

/// A problem `PolicySandbox.check` found in a policy without running its function.
public struct PolicyDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let line: Int?
    public let message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}
