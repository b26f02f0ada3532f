// DecisionBenchmark.swift — `aerodb-bench decisions`: latency and throughput of promotion
// decisions, native rules alone and with the shipped site policies, over cluster sizes.
//
// One sample is one `PromotionEngine.decide` call on an already parsed facts document: the
// native rules plus, per policy, a fresh sandbox (new Lua state, load, run, close) — what
// the live cluster pays per decision. Samples are taken one after another on one thread;
// the figures are measured on this machine, never estimated (docs/benchmarks.md).
import AeroCore
import AeroPolicy
import AeroPromotion
import ArgumentParser
import Foundation

struct DecisionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decisions",
        abstract: "Promotion decision latency (p50/p99) and decisions/s, native rules and with site policies.",
        discussion: """
            Scenarios: native rules only; native + as many no-op policies as --policies holds \
            (the cost of the fresh sandboxes alone); native + the policies in --policies; on generated \
            failover facts (FactsFixtures.cluster) of 5, 100 and 1,000 nodes. Every sampled \
            decision is checked to be "allow", so every rule and policy runs to its end.

            Example (release build, as in docs/benchmarks.md):
              swift build -c release --product aerodb-bench
              .build/release/aerodb-bench decisions --policies policies
            """
    )

    /// Bounds: a run never takes more than about samplesMax × the slowest decision.
    static let samplesMax = 1_000_000
    static let warmupSamples = 50

    @Option(name: .long, help: "Directory (or file) of site policies for the policy scenarios.")
    var policies: String = "policies"

    @Option(name: .long, help: "Measured decisions per scenario on 5 nodes; larger clusters scale it down.")
    var samples: Int = 5_000

    @Option(name: .long, parsing: .upToNextOption, help: "Cluster sizes (nodes) to measure.")
    var nodes: [Int] = [5, 100, 1_000]

    @Flag(name: .long, help: "Run policies in the supervised worker process, as the live node does; CPU then adds the worker's CPU time.")
    var worker = false


    func validate() throws {
        guard samples > 0, samples <= Self.samplesMax else {
            throw ValidationError("--samples must be in 1...\(Self.samplesMax)")
        }
        guard !nodes.isEmpty, nodes.allSatisfy({ $0 >= 3 && $0 <= FactsDocument.nodeCountMax }) else {
            throw ValidationError("--nodes must be in 3...\(FactsDocument.nodeCountMax)")
        }
    }

    /// Policies that return nil at once: what the fresh sandboxes cost without policy logic.
    static func noOpPolicies(count: Int) -> [PolicySource] {
        (0..<count).map { index in
            PolicySource(name: "no-op-\(index)", path: "no-op-\(index).lua", text: "return function(facts) return nil end\n")
        }
    }

    /// /proc/loadavg's first three fields, or "unknown" where there is none.
    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    func run() throws {
        let loaded: [PolicySource]
        do {
            loaded = try PolicyLoader.load(paths: [policies]).filter { !$0.path.hasSuffix(".d.lua") }
        } catch {
            throw ValidationError("--policies: \(error)")
        }
        print("aerodb-bench decisions — engine \(AeroVersion.string), \(loaded.count) policies from \(policies): "
            + loaded.map(\.name).joined(separator: ", "))
        let budget = PolicySandbox.defaultBudget
        print("one thread; each decision: native rules + one fresh sandbox per policy; default budgets")
        print("load average before the run: \(Self.loadAverage())")
        print("")
        print(DecisionReport.header)
        for nodeCount in nodes {
            let facts = FactsFixtures.cluster(nodeCount: nodeCount)
            // Keep each scenario to a similar amount of work: fewer samples on larger clusters.
            let scaled = max(100, samples * 5 / max(5, nodeCount))
            var scenarios: [(label: String, policies: [PolicySource])] = [("native rules only", [])]
            if !loaded.isEmpty {
                scenarios.append(("native + \(loaded.count) no-op policies", Self.noOpPolicies(count: loaded.count)))
                scenarios.append(("native + \(loaded.count) policies", loaded))
            }
            for (label, set) in scenarios {
                let engine = PromotionEngine(policies: set, sandbox: PolicySandbox(budget: budget, isolation: worker ? .worker : .inProcess))
                let report = try DecisionReport.measure(engine: engine, facts: facts, samples: scaled,
                                                        warmup: Self.warmupSamples)
                print(report.row(scenario: label, nodeCount: nodeCount))
            }
        }
    }
}

/// Latency figures of one scenario. Wall-clock latency is what a caller waits; thread CPU
/// time is what the decision costs on one core, and stays meaningful when other processes
/// load the machine (the load average is printed with the figures).
struct DecisionReport {
    let samples: Int
    let p50Nanoseconds: UInt64
    let p99Nanoseconds: UInt64
    let cpuP50Nanoseconds: UInt64
    let cpuP99Nanoseconds: UInt64
    let decisionsPerSecond: Double

    static let header = """
        | scenario | nodes | samples | p50 wall | p99 wall | p50 CPU | p99 CPU | decisions/s (wall) |
        | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
        """

    /// Runs `warmup` unmeasured then `samples` measured decisions; each must allow.
    static func measure(engine: PromotionEngine, facts: FactsDocument, samples: Int, warmup: Int) throws -> DecisionReport {
        for _ in 0..<warmup { try check(engine.decide(facts)) }
        var latencies = [UInt64](repeating: 0, count: samples)
        var cpuTimes = [UInt64](repeating: 0, count: samples)
        let start = DispatchTime.now().uptimeNanoseconds
        for index in 0..<samples {
            // With worker isolation the worker's CPU time is part of the decision's cost.
            let workerBefore = PolicySandbox.workerStatistics.cpuNanoseconds
            let cpuBefore = threadCPUNanoseconds()
            let before = DispatchTime.now().uptimeNanoseconds
            let decision = engine.decide(facts)
            latencies[index] = DispatchTime.now().uptimeNanoseconds - before
            cpuTimes[index] = threadCPUNanoseconds() - cpuBefore + (PolicySandbox.workerStatistics.cpuNanoseconds - workerBefore)
            try check(decision)
        }
        let total = DispatchTime.now().uptimeNanoseconds - start
        latencies.sort()
        cpuTimes.sort()
        return DecisionReport(
            samples: samples,
            p50Nanoseconds: percentile(latencies, 50),
            p99Nanoseconds: percentile(latencies, 99),
            cpuP50Nanoseconds: percentile(cpuTimes, 50),
            cpuP99Nanoseconds: percentile(cpuTimes, 99),
            decisionsPerSecond: Double(samples) / (Double(total) / 1e9)
        )
    }

    /// CPU time this thread has used, in nanoseconds.
    static func threadCPUNanoseconds() -> UInt64 {
        var time = timespec()
        let status = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        precondition(status == 0, "CLOCK_THREAD_CPUTIME_ID is unavailable")
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// The nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [UInt64], _ percent: Int) -> UInt64 {
        precondition(!sorted.isEmpty && (1...100).contains(percent))
        let rank = (sorted.count * percent + 99) / 100
        return sorted[max(0, rank - 1)]
    }

    private static func check(_ decision: Decision) throws {
        guard decision.allowed else {
            throw ValidationError("the benchmark facts must be allowed; refused: "
                + decision.reasons.map(\.description).joined(separator: "; "))
        }
    }

    func row(scenario: String, nodeCount: Int) -> String {
        "| \(scenario) | \(nodeCount) | \(samples) | \(Self.micros(p50Nanoseconds)) | \(Self.micros(p99Nanoseconds)) "
            + "| \(Self.micros(cpuP50Nanoseconds)) | \(Self.micros(cpuP99Nanoseconds)) | \(Int(decisionsPerSecond.rounded())) |"
    }

    static func micros(_ nanoseconds: UInt64) -> String {
        let tenths = (nanoseconds + 50) / 100
        return "\(tenths / 10).\(tenths % 10) µs"
    }
}
