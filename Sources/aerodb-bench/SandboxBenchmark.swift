// SandboxBenchmark.swift — `aerodb-bench sandbox`: the cost of one fresh policy sandbox run
// (new Lua state, environment, facts, load, call, release) and the worst-case time of the bounded
// pattern functions at their bounds. Figures go to docs/benchmarks.md ("Policy sandbox").
import AeroCore
import AeroPolicy
import AeroPromotion
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

struct SandboxBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Fresh policy sandbox run latency (p50/p99) and pattern worst cases at their bounds.",
        discussion: """
            Example (release build, as in docs/benchmarks.md):
              swift build -c release --product aerodb-bench
              .build/release/aerodb-bench sandbox --policies policies
            """
    )

    static let samplesMax = 1_000_000

    @Option(name: .long, help: "Directory (or file) of site policies to time one by one.")
    var policies: String = "policies"

    @Option(name: .long, help: "Measured runs per scenario on 5 nodes; larger clusters scale it down.")
    var samples: Int = 5_000

    func validate() throws {
        guard samples > 0, samples <= Self.samplesMax else {
            throw ValidationError("--samples must be in 1...\(Self.samplesMax)")
        }
    }

    func run() throws {
        let sandbox = PolicySandbox()
        let noOp = PolicySource(name: "no-op", path: "no-op.lua", text: "return function(facts) return nil end\n")
        let loaded: [PolicySource]
        do {
            loaded = try PolicyLoader.load(paths: [policies]).filter { !$0.path.hasSuffix(".d.lua") }
        } catch {
            throw ValidationError("--policies: \(error)")
        }
        print("aerodb-bench sandbox — one thread, default budget \(PolicySandbox.defaultBudget)")
        print("")
        print("| scenario | nodes | samples | p50 wall | p99 wall | p50 CPU | p99 CPU | peak memory |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for nodeCount in [5, 100, 1_000] {
            let facts = FactsFixtures.cluster(nodeCount: nodeCount).json
            let count = max(50, samples * 5 / nodeCount)
            print(try measure("no-op policy", sandbox: sandbox, policy: noOp, facts: facts, nodes: nodeCount, samples: count))
            if nodeCount == 5 {
                for policy in loaded {
                    print(try measure(policy.name, sandbox: sandbox, policy: policy, facts: facts, nodes: nodeCount, samples: count))
                }
            }
            if !loaded.isEmpty {
                print(try measureDecision(sandbox: sandbox, policies: loaded, facts: facts, nodes: nodeCount, samples: count))
            }
        }
        print("")
        print("Pattern calls at the sandbox bounds (one call: the run's CPU p50 minus that of a run without it):")
        print("")
        print("| pattern call | p50 CPU per call | outcome |")
        print("| --- | ---: | --- |")
        let facts = FactsFixtures.cluster(nodeCount: 5).json
        for (label, call) in Self.patternCases {
            let subject = String(call[..<call.firstIndex(of: ":")!])
            let baseText = "return function() local s = \(subject) end\n"
            let base = try measure("base", sandbox: sandbox, policy: PolicySource(name: "base", path: "base.lua", text: baseText),
                                   facts: facts, nodes: 5, samples: 20)
            let text = "return function() local s = \(call) end\n"
            let policy = PolicySource(name: "pattern", path: "pattern.lua", text: text)
            let report = try measure(label, sandbox: sandbox, policy: policy, facts: facts, nodes: 5, samples: 20, expectAllow: false)
            let outcome = sandbox.run(policy, facts: facts).outcome
            let perCall = report.cpuP50 > base.cpuP50 ? report.cpuP50 - base.cpuP50 : 0
            print("| `\(label)` | \(Self.micro(perCall)) | \(Self.describe(outcome)) |")
        }
    }

    /// Worst cases for the step-counted matcher (aero_match.c: at most AERO_PATTERN_STEPS_MAX
    /// = 500,000 steps per call, subject <= 65,536 bytes, pattern <= 256 bytes): calls
    /// refused at the step bound cost the most, and ordinary patterns on 4 KiB for contrast.
    static let patternCases: [(String, String)] = [
        ("plain find, 65,536-byte subject, 256-byte needle", "string.rep('a', 65536):find(string.rep('a', 255) .. 'b', 1, true)"),
        ("find ('a-' × 6) .. 'b', 60,000-byte subject (step bound)", "string.rep('a', 60000):find(string.rep('a-', 6) .. 'b')"),
        ("match ('x?' × 30) .. ('x' × 30), 30-byte subject (step bound)", "string.rep('x', 30):match(string.rep('x?', 30) .. string.rep('x', 30))"),
        ("gmatch 'a*a*a*b', 65,536-byte subject (step bound)", "string.rep('a', 65536):gmatch('a*a*a*b')()"),
        ("find '%b()', 30,000 × '((' (step bound)", "string.rep('((', 30000):find('%b()')"),
        ("match '(.-)%1%1b$', 60,000-byte subject (step bound)", "string.rep('ab', 30000):match('(.-)%1%1b$')"),
        ("find 10 classes .. 'b', 65,536-byte subject (step bound)", "string.rep('a', 65536):find(string.rep('[a%a%w%d]', 10) .. 'b')"),
        ("gsub('a', 'bb') on the 65,536-byte subject bound", "string.rep('a', 65536):gsub('a', 'bb')"),
        ("gsub('[^,]+', f) over a 4 KiB comma list (ordinary)", "string.rep('node-17,', 512):gsub('[^,]+', string.upper)"),
        ("match an RFC 3339-like stamp with 6 captures (ordinary)", "string.rep('2026-11-26T10.00.00Z', 1):match('^(%d+)%-(%d+)%-(%d+)T(%d+)%.(%d+)%.(%d+)Z$')"),
    ]

    struct Report: CustomStringConvertible {
        let label: String
        let nodes: Int
        let samples: Int
        let wallP50: UInt64, wallP99: UInt64, cpuP50: UInt64, cpuP99: UInt64
        let memoryBytesPeak: Int
        var description: String {
            "| \(label) | \(nodes) | \(samples) | \(SandboxBenchCommand.micro(wallP50)) | \(SandboxBenchCommand.micro(wallP99)) | \(SandboxBenchCommand.micro(cpuP50)) | \(SandboxBenchCommand.micro(cpuP99)) | \(memoryBytesPeak / 1024) KiB |"
        }
    }

    func measure(_ label: String, sandbox: PolicySandbox, policy: PolicySource, facts: JSONValue, nodes: Int,
                 samples: Int, expectAllow: Bool = true) throws -> Report {
        var peak = 0
        for _ in 0..<min(50, samples) { peak = sandbox.run(policy, facts: facts).memoryBytesPeak }
        var walls = [UInt64](repeating: 0, count: samples)
        var cpus = [UInt64](repeating: 0, count: samples)
        for index in 0..<samples {
            let cpuBefore = Self.clock(CLOCK_THREAD_CPUTIME_ID)
            let before = Self.clock(CLOCK_MONOTONIC)
            let run = sandbox.run(policy, facts: facts)
            walls[index] = Self.clock(CLOCK_MONOTONIC) - before
            cpus[index] = Self.clock(CLOCK_THREAD_CPUTIME_ID) - cpuBefore
            if expectAllow && run.outcome != .noObjection {
                throw ValidationError("\(policy.name) did not allow on \(nodes) nodes: \(run.outcome)")
            }
        }
        walls.sort()
        cpus.sort()
        return Report(label: label, nodes: nodes, samples: samples,
                      wallP50: walls[samples / 2], wallP99: walls[min(samples - 1, samples * 99 / 100)],
                      cpuP50: cpus[samples / 2], cpuP99: cpus[min(samples - 1, samples * 99 / 100)],
                      memoryBytesPeak: peak)
    }

    /// One decision's policy work: the facts encoded once (PolicyFacts), then every policy
    /// in its own fresh sandbox.
    func measureDecision(sandbox: PolicySandbox, policies: [PolicySource], facts: JSONValue, nodes: Int,
                         samples: Int) throws -> Report {
        var walls = [UInt64](repeating: 0, count: samples)
        var cpus = [UInt64](repeating: 0, count: samples)
        var peak = 0
        for index in -min(50, samples)..<samples {
            let cpuBefore = Self.clock(CLOCK_THREAD_CPUTIME_ID)
            let before = Self.clock(CLOCK_MONOTONIC)
            let prepared = PolicyFacts(facts)
            let runs = policies.map { sandbox.run($0, facts: prepared) }
            let wall = Self.clock(CLOCK_MONOTONIC) - before
            let cpu = Self.clock(CLOCK_THREAD_CPUTIME_ID) - cpuBefore
            if let refused = runs.first(where: { $0.outcome != .noObjection }) {
                throw ValidationError("\(refused.name) did not allow on \(nodes) nodes: \(refused.outcome)")
            }
            peak = runs.map(\.memoryBytesPeak).max() ?? 0
            if index >= 0 {
                walls[index] = wall
                cpus[index] = cpu
            }
        }
        walls.sort()
        cpus.sort()
        return Report(label: "decision: all \(policies.count) policies", nodes: nodes, samples: samples,
                      wallP50: walls[samples / 2], wallP99: walls[min(samples - 1, samples * 99 / 100)],
                      cpuP50: cpus[samples / 2], cpuP99: cpus[min(samples - 1, samples * 99 / 100)],
                      memoryBytesPeak: peak)
    }

    static func clock(_ id: clockid_t) -> UInt64 {
        var time = timespec()
        clock_gettime(id, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    static func describe(_ outcome: PolicyOutcome) -> String {
        switch outcome {
        case .noObjection: return "ran"
        case .refused: return "refused"
        case .failed(let kind, let message): return "\(kind): " + (message.split(separator: ":", maxSplits: 2).last.map { String($0.dropFirst()) } ?? message)
        }
    }
}

extension SandboxBenchCommand {
    static func micro(_ nanoseconds: UInt64) -> String {
        let tenths = (nanoseconds + 50) / 100
        return "\(tenths / 10).\(tenths % 10) µs"
    }
}
