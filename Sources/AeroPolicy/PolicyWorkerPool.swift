// PolicyWorkerPool.swift — the last line of defence: policies evaluated in a supervised worker
// process (the `aerodb-policy-worker` executable, PolicyWorkerServe.swift) that the host kills
// with SIGKILL at a policy's deadline. It does not depend on Lua's internals: whatever a policy
// does inside one C call (where no hook fires), the host has its answer within the policy's
// time budget plus `deadlineMarginMs` on a host that is not overloaded, and never later than
// `hardCapFactor` × budget + margin; the answer for that policy is a refusal. A crash, an
// early exit or a malformed answer of the worker is that policy's failure with a stable
// explanation, and the rest of the decision runs in a fresh worker. Design and measurements:
// docs/sandbox.md ("Process isolation").
//
// Workers are started once and reused (pre-forked pool): a request carries the budget, the
// facts tape and the policies; the worker answers policy by policy. The deadline counts the
// worker's own CPU time (clock_getcpuclockid), like the in-process budget, so a worker that is
// merely preempted on a loaded host is not killed early; the hard cap bounds the wall time.
import AeroCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class PolicyWorkerPool: @unchecked Sendable {
    static let shared = PolicyWorkerPool()

    /// Added to a policy's CPU budget before the supervisor kills its worker: the in-process
    /// budget normally fires first (it checks every 100 instructions and at every call); the
    /// margin covers the worker's own work around the run (decoding, encoding the answer) and
    /// scheduling noise. 50 ms: a runaway is stopped 50 ms after its budget.
    static let deadlineMarginMs: UInt64 = 50
    /// A worker is killed after this many times its CPU budget (plus the margin) in wall time
    /// even if it was preempted for most of it: the bound on what a caller waits.
    static let hardCapFactor: UInt64 = 4
    /// Idle workers kept for reuse; more concurrent decisions start more and retire them after.
    static let idleWorkersMax = 4
    /// The worker executable's name, looked for beside the running executable (or at
    /// $AERODB_POLICY_WORKER).
    static let executableName = "aerodb-policy-worker"

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    // Guarded by `mutex` (hence @unchecked Sendable).
    private var idle: [WorkerProcess] = []
    private var workerCPUNs: UInt64 = 0
    private var started = 0

    private init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        #if os(Linux)
        // Workers are reaped by pid; none is left a zombie. Writing to a dead worker must be
        // an error, not a SIGPIPE (send uses MSG_NOSIGNAL; this covers nothing else).
        #endif
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// CPU time all workers spent on requests, and workers started (for the benchmark).
    var statistics: (workerCPUNs: UInt64, workersStarted: Int) { locked { (workerCPUNs, started) } }

    /// Runs `policies` in order, in workers; one run per policy, in the same order.
    func run(_ policies: [PolicySource], facts: PolicyFacts, budget: LuaBudget) -> [PolicyRun] {
        var runs: [PolicyRun] = []
        var pending = policies[...]
        var freshStartsLeft = policies.count + 1  // each worker lost costs one policy; bounded
        while !pending.isEmpty {
            let worker: WorkerProcess
            switch acquire() {
            case .success(let w): worker = w
            case .failure(let reason):
                runs += pending.map { Self.failed($0, .runtime, "no policy worker could be started (\(reason))") }
                return runs
            }
            let request = PolicyWire.encode(PolicyWire.Request(budget: budget, facts: facts, policies: Array(pending)))
            guard PolicyWorker.writeAll(fd: worker.fd, request) else {
                worker.stop()
                freshStartsLeft -= 1
                if freshStartsLeft <= 0 {
                    runs += pending.map { Self.failed($0, .runtime, "the policy worker did not accept the request") }
                    return runs
                }
                continue
            }
            var healthy = true
            while let policy = pending.first {
                let answer = worker.awaitRun(budget: budget)
                addCPU(answer.cpuNs)
                switch answer.result {
                case .run(let run) where run.name == policy.name:
                    runs.append(run)
                    pending.removeFirst()
                    continue
                case .run:
                    runs.append(Self.failed(policy, .runtime, "the policy worker answered for another policy"))
                case .deadline:
                    runs.append(Self.failed(policy, .timeBudget,
                                            "time budget of \(budget.cpuTimeMsMax) ms exceeded (the policy worker was stopped at its deadline)"))
                case .ended(let how):
                    runs.append(Self.failed(policy, .runtime, "the policy worker \(how) while running this policy"))
                case .malformed:
                    runs.append(Self.failed(policy, .runtime, "the policy worker gave a malformed answer"))
                }
                pending.removeFirst()
                healthy = false
                break
            }
            if healthy { release(worker) } else { worker.stop() }
        }
        return runs
    }

    private static func failed(_ policy: PolicySource, _ kind: PolicyFailureKind, _ text: String) -> PolicyRun {
        PolicyRun(name: policy.name, outcome: .failed(kind: kind, message: "\(policy.path): \(text)"),
                  instructionsUsed: 0, memoryBytesPeak: 0, printed: [], printedTruncated: false)
    }

    /// Stops every idle worker (tests: the next decision starts a fresh one).
    func retireIdleWorkers() {
        let retired = locked { () -> [WorkerProcess] in
            defer { idle.removeAll() }
            return idle
        }
        retired.forEach { $0.stop() }
    }

    private func addCPU(_ ns: UInt64) { locked { workerCPUNs &+= ns } }

    private func acquire() -> Result<WorkerProcess, WorkerStartError> {
        if let worker = locked({ idle.popLast() }) { return .success(worker) }
        let result = WorkerProcess.start(path: Self.executablePath())
        if case .success = result { locked { started += 1 } }
        return result
    }

    private func release(_ worker: WorkerProcess) {
        let kept = locked { () -> Bool in
            guard idle.count < Self.idleWorkersMax else { return false }
            idle.append(worker)
            return true
        }
        if !kept { worker.stop() }
    }

    /// $AERODB_POLICY_WORKER, else `aerodb-policy-worker` in the running executable's directory
    /// (the executables and the test bundle are built side by side).
    static func executablePath() -> String {
        if let explicit = getenv("AERODB_POLICY_WORKER"), explicit.pointee != 0 { return String(cString: explicit) }
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        #if os(Linux)
        let n = readlink("/proc/self/exe", &path, Int(PATH_MAX))
        let own = n > 0 ? String(decoding: path[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        #else
        let own = CommandLine.arguments[0]
        #endif
        var directory = own
        if let slash = directory.lastIndex(of: "/") { directory = String(directory[..<slash]) } else { directory = "." }
        return directory + "/" + executableName
    }
}

struct WorkerStartError: Error, CustomStringConvertible {
    let description: String
}

/// One worker process and the host's end of its socket.
final class WorkerProcess {
    let pid: pid_t
    let fd: Int32
    private var reader: FrameReader
    private var stopped = false

    enum Answer { case run(PolicyRun), deadline, ended(String), malformed }

    private init(pid: pid_t, fd: Int32) {
        self.pid = pid
        self.fd = fd
        reader = FrameReader(fd: fd)
    }

    deinit { stop() }

    static func start(path: String) -> Result<WorkerProcess, WorkerStartError> {
        guard access(path, X_OK) == 0 else { return .failure(WorkerStartError(description: "\(path) is not an executable")) }
        var fds: [Int32] = [-1, -1]
        #if os(Linux)
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            return .failure(WorkerStartError(description: "socketpair: errno \(errno)"))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 0)  // dup2 clears close-on-exec on fd 0
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)  // never the host's stdout
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), strdup(PolicyWorker.serveArgument), nil]
        defer { argv.forEach { free($0) } }
        let status = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(fds[1])
        guard status == 0 else {
            close(fds[0])
            return .failure(WorkerStartError(description: "posix_spawn \(path): error \(status)"))
        }
        return .success(WorkerProcess(pid: pid, fd: fds[0]))
    }

    /// The worker's CPU time so far (its whole process), in nanoseconds; nil once it is gone.
    private func cpuNs() -> UInt64? {
        var clock = clockid_t()
        guard clock_getcpuclockid(pid, &clock) == 0 else { return nil }
        var ts = timespec()
        guard clock_gettime(clock, &ts) == 0 else { return nil }
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Waits for the next answer under the supervisor's deadline (see PolicyWorkerPool), and
    /// the worker CPU time it took.
    func awaitRun(budget: LuaBudget) -> (result: Answer, cpuNs: UInt64) {
        let limitNs = (budget.cpuTimeMsMax + PolicyWorkerPool.deadlineMarginMs) * 1_000_000
        let startNs = Self.monotonicNs()
        let hardNs = startNs + (budget.cpuTimeMsMax * PolicyWorkerPool.hardCapFactor + PolicyWorkerPool.deadlineMarginMs) * 1_000_000
        let cpuStart = cpuNs() ?? 0
        var wallDeadline = startNs + limitNs
        // Asked whenever poll times out: wait on while the worker's CPU time is within the
        // limit and the hard cap is not reached; nil means stop it.
        let remaining: () -> UInt64? = {
            let now = Self.monotonicNs()
            if now < wallDeadline { return wallDeadline - now }
            guard now < hardNs, let cpu = self.cpuNs() else { return nil }
            let used = cpu &- cpuStart
            if used >= limitNs { return nil }
            // CPU time grows no faster than wall time: the earliest the limit can be reached.
            wallDeadline = min(now + (limitNs - used), hardNs)
            return wallDeadline - now
        }
        let result = reader.next(bytesMax: PolicyWire.answerBytesMax, deadlineNs: remaining)
        let cpuUsed = (cpuNs() ?? cpuStart) &- cpuStart
        switch result {
        case .frame(let body):
            guard let run = try? PolicyWire.decodeRun(body) else { return (.malformed, cpuUsed) }
            return (.run(run), cpuUsed)
        case .timedOut:
            return (.deadline, cpuUsed)
        case .end, .failed:
            return (.ended(stopAndDescribe()), cpuUsed)
        }
    }

    /// Kills (if still running) and reaps the worker; says how it ended.
    private func stopAndDescribe() -> String {
        guard !stopped else { return "ended" }
        stopped = true
        close(fd)
        var status: Int32 = 0
        // It closed its socket: it is exiting or gone. Reap it, killing it if it lingers.
        var reaped = waitpid(pid, &status, WNOHANG)
        if reaped == 0 {
            kill(pid, SIGKILL)
            repeat { reaped = waitpid(pid, &status, 0) } while reaped < 0 && errno == EINTR
        }
        guard reaped == pid else { return "ended" }
        let signal = status & 0x7f
        if signal != 0 { return "was killed by signal \(signal)" }
        return "exited with status \((status >> 8) & 0xff)"
    }

    /// Kills and reaps the worker (idempotent).
    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGKILL)
        close(fd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}
