// BenchCommand.swift — `aerodb-policy bench`: how close each policy runs to its budgets.
// Every run is a fresh sandbox, as in a decision; CPU is the thread's CPU time around the
// whole run (state, environment, facts, policy), which is what the time budget counts.
import AeroCore
import AeroPolicy
import ArgumentParser
import Foundation

struct BenchCommand: ParsableCommand {
    /// Runs per policy: at most this many (each is a fresh sandbox).
    static let runsMax = 100_000

    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run each policy N times in fresh sandboxes; show p50/p99 use against its budgets.",
        discussion: """
            For every policy: CPU time (the thread's, for the whole run), VM instructions and \
            the memory its budget charged at the peak (the environment and the facts are not \
            charged; the state's whole peak is shown beside), as p50 and p99 over --runs fresh sandboxes, each beside \
            its budget and the share of the budget it uses. One run before the measured ones \
            compiles the policy (outside any budget, as on a node) and is not counted. \
            Instructions and memory are deterministic for the same facts; CPU time is not.

            Examples:
              aerodb-policy bench --facts examples/facts/failover-ok.json \\
                  --policy policies
              aerodb-policy bench --facts examples/facts/switchover-ok.json \\
                  --policy policies/keep-a-replica.lua --runs 1000 --format json

            Exit codes: 0 measured; 2 unusable input (facts, policy, bad flags).
            """
    )

    @Option(name: .long, help: ArgumentHelp("The facts document (JSON); '-' reads standard input.", valueName: "file"))
    var facts: String

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp(
        "A policy file, or a directory whose *.lua files are policies. Repeatable.", valueName: "file-or-dir"))
    var policy: [String] = []

    @Option(name: .long, help: ArgumentHelp("Measured runs per policy.", valueName: "count"))
    var runs = 100

    @Option(name: .long, help: "Output format: text for people, json for programs (one document).")
    var format: OutputFormat = .text

    func validate() throws {
        guard (1...Self.runsMax).contains(runs) else { throw ValidationError("--runs must be between 1 and \(Self.runsMax)") }
        guard !policy.isEmpty else { throw ValidationError("give at least one --policy (a file or a directory of *.lua)") }
    }

    func run() throws {
        let document = try EvalInputs.facts(path: facts)
        let sources = try EvalInputs.policies(paths: policy)
        let budget = PolicySet.budget
        // Tooling without coverage or facts reads: only the memory each run was charged.
        let tooling = PolicyTooling(coverage: false, factsReads: false)
        let sandbox = PolicySandbox(budget: budget, tooling: tooling)
        let policyFacts = PolicyFacts(document.json)
        var results: [BenchResult] = []
        for source in sources {
            _ = sandbox.run(source, facts: policyFacts)  // compiles; not measured
            var cpu: [UInt64] = []
            var instructions: [Int64] = []
            var memory: [Int] = []
            var statePeak: [Int] = []
            var outcomes: Set<String> = []
            for _ in 0..<runs {
                let start = Self.threadCPUNanoseconds()
                let run = sandbox.run(source, facts: policyFacts)
                cpu.append(Self.threadCPUNanoseconds() - start)
                instructions.append(run.instructionsUsed)
                memory.append(tooling.takeMemoryCharged()[source.name] ?? 0)
                statePeak.append(run.memoryBytesPeak)
                outcomes.insert(Self.outcome(run.outcome))
            }
            results.append(BenchResult(name: source.name, runs: runs, cpuNanoseconds: cpu.sorted(),
                                       instructions: instructions.sorted(), memoryBytes: memory.sorted(), statePeakBytes: statePeak.sorted(),
                                       outcomes: outcomes.sorted()))
        }
        switch format {
        case .json:
            print(JSONValue.object([
                "runs": .integer(Int64(runs)),
                "instruction_step": .integer(Int64(budget.hookIntervalInstructions)),
                "budget": .object([
                    "cpu_ms": .integer(Int64(budget.cpuTimeMsMax)), "instructions": .integer(budget.instructionsMax),
                    "memory_bytes": .integer(Int64(budget.memoryBytesMax)),
                ]),
                "policies": .array(results.map { $0.json(budget) }),
            ]).prettyJSON)
        case .text:
            print("\(runs) runs per policy, each in a fresh sandbox; budgets: \(budget.cpuTimeMsMax) ms CPU, "
                + "\(budget.instructionsMax) instructions, \(budget.memoryBytesMax) bytes of memory")
            print("(instructions are counted in steps of \(budget.hookIntervalInstructions), as the budget counts them)")
            for result in results { print(result.text(budget), terminator: "") }
        }
    }

    static func outcome(_ outcome: PolicyOutcome) -> String {
        switch outcome {
        case .noObjection: return "no objection"
        case .refused: return "refused"
        case .failed(let kind, _): return "failed (\(kind.rawValue))"
        }
    }

    static func threadCPUNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// One policy's measurements, each list sorted ascending.
struct BenchResult {
    let name: String
    let runs: Int
    let cpuNanoseconds: [UInt64]
    let instructions: [Int64]
    /// The memory the budget charged at the run's peak, and the whole state's peak.
    let memoryBytes: [Int]
    let statePeakBytes: [Int]
    let outcomes: [String]

    /// The nearest-rank percentile of a sorted list.
    static func percentile<T>(_ sorted: [T], _ percent: Int) -> T {
        let rank = (percent * sorted.count + 99) / 100
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }

    private static func share(_ used: Double, _ budget: Double) -> String {
        let percent = used / budget * 100
        return percent < 0.1 && used > 0 ? "<0.1%" : String(format: "%.1f%%", percent)
    }

    func text(_ budget: LuaBudget) -> String {
        let cpu50 = Double(Self.percentile(cpuNanoseconds, 50)) / 1e6
        let cpu99 = Double(Self.percentile(cpuNanoseconds, 99)) / 1e6
        let cpuBudget = Double(budget.cpuTimeMsMax)
        let in50 = Self.percentile(instructions, 50), in99 = Self.percentile(instructions, 99)
        let mem50 = Self.percentile(memoryBytes, 50), mem99 = Self.percentile(memoryBytes, 99)
        let memBudget = Double(budget.memoryBytesMax)
        var lines = ["\(name)  (\(outcomes.joined(separator: ", ")))"]
        lines.append(String(format: "  cpu           p50 %.3f ms  p99 %.3f ms  of %d ms  (p99 %@)",
                            cpu50, cpu99, Int(budget.cpuTimeMsMax), Self.share(cpu99, cpuBudget)))
        lines.append("  instructions  p50 \(in50)  p99 \(in99)  of \(budget.instructionsMax)  (p99 \(Self.share(Double(in99), Double(budget.instructionsMax))))")
        lines.append("  memory        p50 \(mem50) B  p99 \(mem99) B  of \(budget.memoryBytesMax) B  (p99 \(Self.share(Double(mem99), memBudget)))")
        lines.append("  state peak    p50 \(Self.percentile(statePeakBytes, 50)) B  p99 \(Self.percentile(statePeakBytes, 99)) B  (environment and facts included, not charged)")
        return lines.joined(separator: "\n") + "\n"
    }

    func json(_ budget: LuaBudget) -> JSONValue {
        func pair<T: BinaryInteger>(_ sorted: [T]) -> JSONValue {
            .object(["p50": .integer(Int64(Self.percentile(sorted, 50))), "p99": .integer(Int64(Self.percentile(sorted, 99)))])
        }
        return .object([
            "name": .string(name), "runs": .integer(Int64(runs)),
            "outcomes": .array(outcomes.map(JSONValue.string)),
            "cpu_ns": pair(cpuNanoseconds), "instructions": pair(instructions), "memory_bytes_charged": pair(memoryBytes),
            "state_memory_bytes_peak": pair(statePeakBytes),
        ])
    }
}
