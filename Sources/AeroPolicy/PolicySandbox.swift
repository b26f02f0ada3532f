// PolicySandbox.swift — runs one site policy against frozen facts in a fresh, budgeted Lua
// state, and checks policies without running them. Design and limits: docs/sandbox.md.
//
// Design notes
// ------------
// Invariants:
//   1. Fresh state: every run and every check creates its own Lua state and closes it before
//      returning; nothing survives from one policy or decision to the next.
//   2. Fail closed: every path that does not end in a validated answer (nil, a non-empty
//      string, a list of non-empty strings) ends in `.failed`, which counts as a refusal.
//   3. Sticky budgets: a budget tripped at any point (even if the policy caught the error with
//      its own pcall) makes the outcome `.failed` with that budget's kind.
//   4. No Lua error crosses a Swift frame: Swift only calls the protected entry points
//      (aero_load_text, aero_load_host_binary, aero_pcall and the aero_sandbox_* wrappers) and
//      non-raising stack operations (lua_pushvalue, lua_setupvalue, lua_rawgeti, reads).
//   5. The host never converts a Lua value with metamethods: it reads only what the sandbox's
//      validate() produced (plain strings in a plain table) or plain strings on the stack.
//
// Steps of one run (SandboxSession): create state (collector stopped) → prepare (the
// allow-listed environment built in C, library tables filled on first use) → push the facts root
// (materialized lazily as the policy reads) → load policy bytecode → top level (budgeted)
// → validate(fn, facts) (budgeted) → read the answer and the printed lines → close.
import AeroCore
import CLuaShim

public struct PolicySandbox: Sendable {
    /// Defaults: 1,000,000 VM instructions (counted every 100), 16 MiB for the policy on top
    /// of the memory the environment and facts occupy, and 200 ms of the thread's CPU time for
    /// the whole run as the last resort. A shipped policy uses a few thousand instructions and
    /// well under 1 MiB on a 5-node document.
    public static let defaultBudget = LuaBudget(
        instructionsMax: 1_000_000, memoryBytesMax: 16 << 20, cpuTimeMsMax: 200, hookIntervalInstructions: 100)

    /// print() keeps at most this many lines ...
    public static let printedLinesMax = 64
    /// ... and this many bytes in total ...
    public static let printedBytesMax = 8 << 10
    /// ... each line cut at this many bytes.
    public static let printedLineBytesMax = Int(AERO_PRINTED_LINE_BYTES_MAX)
    /// Error messages from Lua are cut at this many bytes.
    public static let messageBytesMax = 1_024
    /// Memory the environment and facts root may take before the policy's own budget
    /// starts (facts the policy reads are added to its cap as they are built).
    public static let setupBytesMax = 256 << 20

    public let budget: LuaBudget
    /// Where policies run: see `Isolation`.
    public let isolation: Isolation

    /// Where a sandbox runs its policies.
    public enum Isolation: Sendable, Equatable {
        /// In the calling thread: the hook budgets and bounded wrappers only. For tests of the
        /// sandbox itself and for the worker process.
        case inProcess
        /// In a supervised worker process killed at the deadline (PolicyWorkerPool): the host
        /// has its answer even if a policy never returns from a C call. The live node and
        /// `aerodb-policy eval` use this.
        case worker
    }

    /// aerodb-policy's coverage and facts-read recording (PolicyTooling.swift); nil elsewhere.
    /// Tooling runs in process: it reads the state's hooks and proxies directly.
    public let tooling: PolicyTooling?

    public init(budget: LuaBudget = PolicySandbox.defaultBudget, isolation: Isolation = .inProcess, tooling: PolicyTooling? = nil) {
        precondition(tooling == nil || isolation == .inProcess, "tooling records inside the state: it runs in process")
        self.budget = budget
        self.isolation = isolation
        self.tooling = tooling
    }

    /// Runs every policy of one decision, in order, each in its own fresh state; with
    /// `.worker` isolation in a supervised worker process (one request per decision).
    public func runAll(_ policies: [PolicySource], facts: PolicyFacts) -> [PolicyRun] {
        switch isolation {
        case .inProcess: return policies.map { run($0, facts: facts) }
        case .worker: return PolicyWorkerPool.shared.run(policies, facts: facts, budget: budget)
        }
    }

    /// Worker CPU time spent on requests so far and workers started, process-wide (for the
    /// decision benchmark, which must count the worker's CPU as part of a decision).
    public static var workerStatistics: (cpuNanoseconds: UInt64, workersStarted: Int) {
        let s = PolicyWorkerPool.shared.statistics
        return (s.workerCPUNs, s.workersStarted)
    }

    /// Fresh Lua state per call. `facts` is the whole facts document (already validated by
    /// the engine); the sandbox adds facts.candidate (the node whose id is
    /// facts.request.candidate) and facts.primary (the node whose id is facts.cluster.primary)
    /// as the same node tables (nil when absent). JSON null is nil in Lua.
    public func run(_ policy: PolicySource, facts: JSONValue) -> PolicyRun {
        run(policy, facts: LastFacts.shared.encoded(facts))
    }

    /// The same, with facts encoded once for every policy of a decision (`PolicyFacts`).
    public func run(_ policy: PolicySource, facts: PolicyFacts) -> PolicyRun {
        if isolation == .worker { return runAll([policy], facts: facts)[0] }
        let session: SandboxSession
        do {
            session = try SandboxSession(policy: policy, budget: budget, tooling: tooling)
        } catch {
            return PolicyRun(name: policy.name, outcome: .failed(kind: .memoryBudget, message: "\(policy.path): \(error.message)"),
                             instructionsUsed: 0, memoryBytesPeak: 0, printed: [], printedTruncated: false)
        }
        return session.run(facts: facts)
    }

    /// Loads (compiles and runs the chunk's top level under budgets, without calling the
    /// returned function) and reports syntax errors with file:line, a chunk that does not
    /// return a function, and global names the code reads that the sandbox does not provide.
    public func check(_ policy: PolicySource) -> [PolicyDiagnostic] {
        let session: SandboxSession
        do {
            session = try SandboxSession(policy: policy, budget: budget)
        } catch {
            return [PolicyDiagnostic(path: policy.path, line: nil, message: error.message)]
        }
        return session.check()
    }
}
/// A facts document encoded once for the Lua sandbox, to be given to many policy runs of
/// one decision (encoding sorts every object's keys, so it is worth doing once).
public struct PolicyFacts: Sendable {
    let tape: Result<[UInt8], FactsTape.EncodeError>

    init(tape: Result<[UInt8], FactsTape.EncodeError>) {
        self.tape = tape
    }

    public init(_ facts: JSONValue) {
        do {
            tape = .success(try FactsTape.encode(facts))
        } catch {
            tape = .failure(error)
        }
    }
}
