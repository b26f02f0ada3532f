// PolicyTooling.swift — instrumentation `aerodb-policy` attaches to a sandbox: line coverage
// of each policy it runs and the facts paths each run read. Nothing here changes a run: the
// C side (aero_tooling.c) writes into buffers allocated here, outside the Lua state's memory
// budget, and the instruction count is the count hook's whichever other events are on. A
// sandbox without tooling (every node, `eval`) sets no line mask and records nothing.
import CLuaShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Line coverage of one policy file, summed over every run of it.
public struct PolicyCoverageFile: Sendable, Equatable {
    public let name: String
    public let path: String
    /// Lines that hold code (what a line hook can report), ascending.
    public let executableLines: [Int]
    /// Times each executable line ran (absent: never).
    public let hits: [Int: Int]

    public var coveredLines: Int { hits.count }
    public var uncoveredLines: [Int] { executableLines.filter { hits[$0] == nil } }
}

/// The facts one policy run read, as JSON paths of the facts document in first-read order
/// (facts.candidate and facts.primary are named by their entry in `nodes`).
public struct PolicyFactsReads: Sendable, Equatable {
    public let paths: [String]
    /// True when the run read more than `PolicyTooling.readsMax` times (the rest is unknown).
    public let truncated: Bool
}

public final class PolicyTooling: @unchecked Sendable {
    /// Facts reads recorded per run, and bytes of their keys; beyond, the record is truncated.
    public static let readsMax = 4_096
    public static let keyBytesMax = 64 << 10

    public let measuresCoverage: Bool
    public let recordsFactsReads: Bool

    // Guarded by `mutex`; @unchecked Sendable is sound because every access takes it.
    private var files: [String: (name: String, lines: [Int], hits: [Int: Int])] = [:]
    private var fileOrder: [String] = []
    private var reads: [String: PolicyFactsReads] = [:]
    private var charged: [String: Int] = [:]
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init(coverage: Bool, factsReads: Bool) {
        measuresCoverage = coverage
        recordsFactsReads = factsReads
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Coverage of every policy run so far, in the order they were first run.
    public func coverage() -> [PolicyCoverageFile] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return fileOrder.map { path in
            let file = files[path]!
            return PolicyCoverageFile(name: file.name, path: path, executableLines: file.lines, hits: file.hits)
        }
    }

    /// The facts each policy (by name) read in its latest run since the last call, then forgets them.
    public func takeFactsReads() -> [String: PolicyFactsReads] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let taken = reads
        reads = [:]
        return taken
    }

    /// The memory each policy (by name) was charged at its peak in its latest run: the part
    /// of the state's peak its memory budget counted (what the environment and the facts
    /// took is not charged). Forgets them.
    public func takeMemoryCharged() -> [String: Int] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let taken = charged
        charged = [:]
        return taken
    }

    fileprivate func add(policy: PolicySource, lines: [Int], counts: UnsafeBufferPointer<UInt32>?, reads run: PolicyFactsReads?,
                         memoryCharged: Int) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if let run { reads[policy.name] = run }
        charged[policy.name] = memoryCharged
        guard let counts else { return }
        if files[policy.path] == nil {
            files[policy.path] = (policy.name, lines, [:])
            fileOrder.append(policy.path)
        }
        // Only executable lines count (a chunk a policy load()s under its own name could
        // report others).
        for line in files[policy.path]!.lines where line < counts.count && counts[line] > 0 {
            files[policy.path]!.hits[line, default: 0] += Int(counts[line])
        }
    }
}

/// The tooling of one sandbox session: the C record and its buffers, attached to the
/// session's budget for the run and detached (then freed) when the run is over.
final class ToolingRun {
    private let tooling: PolicyTooling
    private let policy: PolicySource
    private let lines: [Int]
    private let record: UnsafeMutablePointer<aero_tooling>
    private var source: UnsafeMutablePointer<CChar>?
    private var counts: UnsafeMutableBufferPointer<UInt32>?
    private var readBuffer: UnsafeMutableBufferPointer<aero_facts_read>?
    private var keyBuffer: UnsafeMutableBufferPointer<CChar>?
    private weak var attachedTo: LuaState?
    /// The root facts proxy and the 1-based `nodes` entries of candidate and primary (0: none).
    var root: UnsafeRawPointer?
    var aliases: (candidate: Int, primary: Int) = (0, 0)

    private let memoryBytesMax: Int

    init(tooling: PolicyTooling, policy: PolicySource, bytecode: [UInt8]?, memoryBytesMax: Int) {
        self.tooling = tooling
        self.memoryBytesMax = memoryBytesMax
        self.policy = policy
        let parsed = bytecode?.withUnsafeBytes { ChunkGlobals.parse($0) }
        lines = (parsed?.lines ?? []).sorted()
        record = .allocate(capacity: 1)
        record.initialize(to: aero_tooling())
        if tooling.measuresCoverage {
            let lineCount = (lines.last ?? 0) + 1
            let counts = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: lineCount)
            counts.initialize(repeating: 0)
            self.counts = counts
            source = strdup("=" + policy.name)
            record.pointee.coverage_source = UnsafePointer(source)
            record.pointee.line_counts = counts.baseAddress
            record.pointee.lines_max = Int32(lineCount)
        }
        if tooling.recordsFactsReads {
            let reads = UnsafeMutableBufferPointer<aero_facts_read>.allocate(capacity: PolicyTooling.readsMax)
            let keys = UnsafeMutableBufferPointer<CChar>.allocate(capacity: PolicyTooling.keyBytesMax)
            readBuffer = reads
            keyBuffer = keys
            record.pointee.reads = reads.baseAddress
            record.pointee.reads_max = reads.count
            record.pointee.key_bytes = keys.baseAddress
            record.pointee.key_bytes_max = keys.count
        }
    }

    deinit {
        if let attachedTo { attachedTo.budgetPointer.pointee.tooling = nil }
        free(source)
        counts?.deallocate()
        readBuffer?.deallocate()
        keyBuffer?.deallocate()
        record.deallocate()
    }

    /// From now on the state's hook and facts proxies record (before the budget hook is
    /// installed for the policy, which then adds the line mask).
    func attach(to lua: LuaState) {
        attachedTo = lua
        lua.budgetPointer.pointee.tooling = record
    }

    /// Detaches, and hands the run's coverage and facts reads to the tooling.
    func finish() {
        // The cap ends at (memory when the policy started) + budget + (facts built since):
        // what the cap left unused at the peak is the budget's headroom.
        var memoryCharged = 0
        if let counters = attachedTo?.budgetPointer.pointee {
            let headroom = counters.memory_limit_bytes >= counters.memory_peak_bytes
                ? counters.memory_limit_bytes - counters.memory_peak_bytes : 0
            memoryCharged = max(0, memoryBytesMax - Int(headroom))
        }
        attachedTo?.budgetPointer.pointee.tooling = nil
        attachedTo = nil
        let reads = tooling.recordsFactsReads ? factsReads() : nil
        tooling.add(policy: policy, lines: lines, counts: counts.map { UnsafeBufferPointer($0) }, reads: reads,
                    memoryCharged: memoryCharged)
    }

    /// JSON paths from the recorded reads: the root is `$`, every other proxy is named by the
    /// read that returned it (an address reused after collection is renamed by its next read).
    private func factsReads() -> PolicyFactsReads {
        let count = record.pointee.reads_count
        var names: [UnsafeRawPointer: String] = [:]
        if let root { names[root] = "$" }
        var paths: [String] = []
        var seen: Set<String> = []
        for read in UnsafeBufferPointer(start: record.pointee.reads, count: count) {
            guard let parent = read.parent, let base = names[UnsafeRawPointer(parent)] else { continue }
            let path: String
            switch read.kind {
            case AERO_READ_INDEX:
                path = base + "[\(read.index - 1)]"
            case AERO_READ_MEMBER:
                let bytes = UnsafeRawBufferPointer(start: record.pointee.key_bytes.map { UnsafeRawPointer($0) + read.key_offset },
                                                   count: read.key_length)
                let key = String(decoding: bytes, as: UTF8.self)
                if base == "$", key == "candidate", aliases.candidate > 0 {
                    path = "$.nodes[\(aliases.candidate - 1)]"
                } else if base == "$", key == "primary", aliases.primary > 0 {
                    path = "$.nodes[\(aliases.primary - 1)]"
                } else {
                    path = base + Self.memberStep(key)
                }
            default:
                path = base
            }
            if let child = read.child { names[UnsafeRawPointer(child)] = path }
            if seen.insert(path).inserted { paths.append(path) }
        }
        return PolicyFactsReads(paths: paths, truncated: record.pointee.reads_truncated != 0)
    }

    /// `.name` for plain names (letters, digits, '_', '-'), else `["name"]`.
    static func memberStep(_ key: String) -> String {
        let plain = !key.isEmpty && key.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "-": return true
            default: return false
            }
        }
        if plain { return "." + key }
        var escaped = ""
        for character in key {
            if character == "\\" || character == "\"" { escaped.append("\\") }
            escaped.append(character)
        }
        return "[\"\(escaped)\"]"
    }

    /// The 1-based `nodes` entries of candidate and primary from the tape's closing 'N' record.
    static func aliases(ofTape tape: UnsafeBufferPointer<UInt8>) -> (candidate: Int, primary: Int) {
        guard tape.count >= 9, tape[tape.count - 9] == UInt8(ascii: "N") else { return (0, 0) }
        func u32(_ at: Int) -> Int {
            (0..<4).reduce(0) { $0 | Int(tape[at + $1]) << (8 * $1) }
        }
        return (u32(tape.count - 8), u32(tape.count - 4))
    }
}
