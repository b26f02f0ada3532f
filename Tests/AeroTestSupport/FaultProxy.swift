// FaultProxy.swift — a fault-injecting TCP proxy for multi-process tests on 127.0.0.1.
//
// It listens on an ephemeral port of 127.0.0.1 and forwards every connection to a target port.
// A test puts it between nodes (a node's config names the proxy's port as another member's
// address) and then cuts, slows or restores that path:
//
//   partition(.refuse)     existing connections are reset; new ones are accepted and reset
//                          at once (the peer sees its connection refused or dropped).
//   partition(.blackhole)  existing connections go silent (nothing is forwarded any more, in
//                          either direction, and nothing is closed); new ones are accepted and
//                          held open without a byte read or answered. A peer sees only its own
//                          timeouts, as behind a dead link.
//   heal()                 new connections are forwarded again; every connection of before the
//                          heal (silenced or held) is closed, so peers reconnect.
//   setDelay(ms)           each forwarded chunk waits this long first.
//
// Design rules:
//   1. Bounded: at most `connectionsMax` forwarded connections (one thread each) and
//      `heldMax` black-holed ones (no thread); beyond that a new connection is reset. One
//      chunk buffer of `chunkBytesMax` per connection. Every wait is a `poll` of `pollMs`.
//   2. A fault applies to every connection at once: `generation` is bumped by every
//      partition and heal, and a connection forwards only while its generation is current.
//   3. `stop()` ends every connection and thread, bounded by `stopWaitMs`, and closes the
//      listener; the proxy cannot be restarted. A test must call it (the threads hold the
//      proxy, so there is no deinit to rely on).
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

public final class FaultProxy: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`; the sockets are owned by the
    // thread that pumps them, the lock only lets `partition`/`stop` shut them down.

    public enum Partition: String, Sendable, CaseIterable {
        case refuse, blackhole
    }

    /// What the proxy did, for a test's report (faults injected).
    public struct Stats: Sendable, Equatable {
        /// Connections forwarded to the target.
        public var forwarded = 0
        /// Forwarded connections reset by a `.refuse` partition or silenced by a `.blackhole` one.
        public var cut = 0
        /// Connections reset on arrival during a `.refuse` partition.
        public var refused = 0
        /// Connections held unanswered during a `.blackhole` partition.
        public var blackholed = 0
        /// Connections reset because a bound was reached or the target did not accept.
        public var rejected = 0
        /// Bytes forwarded, both directions.
        public var bytes = 0
    }

    /// Forwarded connections at once (each has one thread).
    public static let connectionsMax = 64
    /// Black-holed connections held at once (no thread; closed on heal or stop).
    public static let heldMax = 256
    /// One read, forwarded as one chunk.
    public static let chunkBytesMax = 64 * 1024
    /// The bound on `setDelay`.
    public static let delayMsMax = 10_000
    /// Bound on `stop()` waiting for the threads to end.
    public static let stopWaitMs = 5_000
    /// Every blocking wait is a poll of this long, after which the state is checked again.
    static let pollMs: Int32 = 20

    public let name: String
    public let port: Int
    public let targetPort: Int
    private let listenFD: Int32
    private let lock = NSLock()
    private var partitionMode: Partition?
    private var generation = 0
    private var delayMs = 0
    private var stopping = false
    private var stopped = false
    private var live: [Int: (client: Int32, target: Int32)] = [:]
    private var nextConnection = 0
    private var held: [Int32] = []
    private var threads = 0
    private var counters = Stats()

    /// Listens on 127.0.0.1 (an ephemeral port) and forwards to 127.0.0.1:`targetPort`.
    public init(name: String, targetPort: Int) throws {
        precondition((1...65535).contains(targetPort), "target port \(targetPort)")
        self.name = name
        self.targetPort = targetPort
        (listenFD, port) = try LoopbackSocket.listen()
        lock.withLock { threads += 1 }
        Thread { [self] in acceptLoop() }.start()
    }

    public var address: String { "127.0.0.1:\(port)" }
    public var stats: Stats { lock.withLock { counters } }
    public var partitioned: Partition? { lock.withLock { partitionMode } }

    /// Cuts the path (rule 2): see the file header for what each mode does.
    public func partition(_ mode: Partition) {
        lock.withLock {
            precondition(!stopped, "partition of a stopped proxy")
            partitionMode = mode
            generation += 1
            counters.cut += live.count
            if mode == .refuse {
                // The pumping threads see the shutdown at once and close.
                for (client, target) in live.values {
                    shutdown(client, Int32(SHUT_RDWR))
                    shutdown(target, Int32(SHUT_RDWR))
                }
            }
        }
    }

    /// Restores forwarding for new connections; ends every connection of before (rule 2).
    public func heal() {
        lock.withLock {
            partitionMode = nil
            generation += 1
            for fd in held { LoopbackSocket.reset(fd) }
            held.removeAll()
        }
    }

    public func setDelay(ms: Int) {
        precondition((0...Self.delayMsMax).contains(ms), "delay \(ms) ms")
        lock.withLock { delayMs = ms }
    }

    /// Ends every connection and thread (bounded by `stopWaitMs`) and closes the listener.
    public func stop() {
        let first: Bool = lock.withLock {
            guard !stopping else { return false }
            stopping = true
            for (client, target) in live.values {
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(target, Int32(SHUT_RDWR))
            }
            for fd in held { LoopbackSocket.reset(fd) }
            held.removeAll()
            return true
        }
        guard first else { return }
        _ = Deadline.waitUntilBlocking(timeoutMs: Self.stopWaitMs, pollMs: Int(Self.pollMs)) { lock.withLock { threads } == 0 }
        let remaining = lock.withLock { threads }
        precondition(remaining == 0, "\(name): \(remaining) proxy threads did not end within \(Self.stopWaitMs) ms")
        close(listenFD)
        lock.withLock { stopped = true }
    }

    // MARK: Threads

    private func acceptLoop() {
        defer { lock.withLock { threads -= 1 } }
        while !lock.withLock({ stopping }) {
            guard LoopbackSocket.waitReadable(listenFD, timeoutMs: Self.pollMs) != 0,
                  let client = LoopbackSocket.accept(listenFD) else { continue }
            admit(client)
        }
    }

    private func admit(_ client: Int32) {
        enum Verdict { case reset, hold, forward(generation: Int) }
        let verdict: Verdict = lock.withLock {
            if stopping { return .reset }
            switch partitionMode {
            case .refuse?:
                counters.refused += 1
                return .reset
            case .blackhole?:
                guard held.count < Self.heldMax else {
                    counters.rejected += 1
                    return .reset
                }
                counters.blackholed += 1
                held.append(client)
                return .hold
            case nil:
                guard live.count < Self.connectionsMax else {
                    counters.rejected += 1
                    return .reset
                }
                return .forward(generation: generation)
            }
        }
        guard case .forward(let generation) = verdict else {
            if case .reset = verdict { LoopbackSocket.reset(client) }
            return
        }
        guard let target = LoopbackSocket.connect(port: targetPort) else {
            lock.withLock { counters.rejected += 1 }
            LoopbackSocket.reset(client)
            return
        }
        let id: Int = lock.withLock {
            nextConnection += 1
            live[nextConnection] = (client, target)
            counters.forwarded += 1
            threads += 1
            return nextConnection
        }
        Thread { [self] in pump(id: id, client: client, target: target, generation: generation) }.start()
    }

    private enum PumpState { case forward, hold, end }

    private func state(of generation: Int) -> PumpState {
        lock.withLock {
            if stopping { return .end }
            if generation == self.generation { return .forward }
            return partitionMode == .blackhole ? .hold : .end
        }
    }

    /// Forwards both directions of one connection until either side closes, a fault ends it,
    /// or the proxy stops. A half-close is passed on (shutdown of the write side).
    private func pump(id: Int, client: Int32, target: Int32, generation: Int) {
        defer {
            lock.withLock {
                live[id] = nil
                threads -= 1
            }
            LoopbackSocket.reset(client)
            LoopbackSocket.reset(target)
        }
        var buffer = [UInt8](repeating: 0, count: Self.chunkBytesMax)
        var readOpen = [true, true]  // client, target
        let fds = [client, target]
        while readOpen[0] || readOpen[1] {
            switch state(of: generation) {
            case .end: return
            case .hold:
                usleep(UInt32(Self.pollMs) * 1000)
                continue
            case .forward: break
            }
            var entries = fds.enumerated().map { pollfd(fd: $1, events: readOpen[$0] ? Int16(POLLIN) : 0, revents: 0) }
            guard poll(&entries, 2, Self.pollMs) > 0 else { continue }
            for side in 0..<2 where readOpen[side] && entries[side].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { recv(fds[side], $0.baseAddress!, Self.chunkBytesMax, 0) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    if count < 0 { return }
                    readOpen[side] = false
                    shutdown(fds[1 - side], Int32(SHUT_WR))
                    continue
                }
                let delay = lock.withLock { delayMs }
                if delay > 0 { usleep(UInt32(delay) * 1000) }
                // A fault that came while this chunk was read (or delayed) drops it.
                guard state(of: generation) == .forward else { break }
                let sent = buffer.withUnsafeBytes { LoopbackSocket.sendAll(fds[1 - side], UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                guard sent else { return }
                lock.withLock { counters.bytes += count }
            }
        }
    }
}
