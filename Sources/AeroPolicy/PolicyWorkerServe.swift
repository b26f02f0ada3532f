// PolicyWorkerServe.swift — the worker side of process isolation (the host side is
// PolicyWorkerPool.swift): a loop that reads one request frame at a time from its socket,
// runs each policy in the in-process sandbox (the first line of defence: hook budgets,
// bounded wrappers) and writes one answer frame per policy as soon as it has it, so a worker
// killed at a policy's deadline has already delivered the answers before it.
import AeroCore
import CLuaShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum PolicyWorker {
    /// The worker's argument that the executables recognise (`aerodb-policy-worker` has no
    /// other job; the name is checked so that starting it by hand does nothing surprising).
    public static let serveArgument = "--serve-policy-requests"

    /// Serves requests on file descriptor `fd` until the host closes it; never returns. Exit
    /// status 0 at end of input, 3 for a malformed request, 4 when the host is gone.
    public static func serve(fd: Int32) -> Never {
        hardenProcess()
        var input = FrameReader(fd: fd)
        while true {
            let body: [UInt8]
            switch input.next(bytesMax: PolicyWire.requestBytesMax, deadlineNs: nil) {
            case .frame(let bytes): body = bytes
            case .end: exit(0)
            case .timedOut, .failed: exit(3)
            }
            guard let request = try? PolicyWire.decodeRequest(body) else { exit(3) }
            let sandbox = PolicySandbox(budget: request.budget)
            for policy in request.policies {
                let run = sandbox.run(policy, facts: request.facts)
                guard writeAll(fd: fd, PolicyWire.encode(run)) else { exit(4) }
            }
        }
    }

    /// No core files from a policy's crash (they could be large and hold facts); on Linux the
    /// worker dies with its host, so a worker busy in a runaway C call never outlives it.
    private static func hardenProcess() {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        #if os(Linux)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none)
        if aero_die_with_parent() == 0 { exit(4) }
        #else
        _ = setrlimit(RLIMIT_CORE, &none)
        #endif
        signal(SIGPIPE, SIG_IGN)
    }

    /// Writes every byte (MSG_NOSIGNAL: a vanished peer is an error, never a SIGPIPE).
    static func writeAll(fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            sent += n
        }
        return true
    }
}

/// Reads u32-length-prefixed frames from a socket, optionally by a deadline (poll), keeping
/// what arrived beyond one frame for the next.
struct FrameReader {
    enum Result { case frame([UInt8]), end, timedOut, failed }
    let fd: Int32
    private var buffer: [UInt8] = []
    /// Bytes read at once.
    private static let chunkBytes = 64 << 10
    private var scratch = [UInt8](repeating: 0, count: chunkBytes)

    init(fd: Int32) { self.fd = fd }

    /// The next frame's body. `deadlineNs` is on CLOCK_MONOTONIC (nil: wait as long as it
    /// takes); a frame longer than `bytesMax` is `.failed`, and so is a stream that ends inside one.
    mutating func next(bytesMax: Int, deadlineNs: (() -> UInt64?)?) -> Result {
        while true {
            if buffer.count >= 4 {
                let length = Int(buffer[0]) | Int(buffer[1]) << 8 | Int(buffer[2]) << 16 | Int(buffer[3]) << 24
                if length > bytesMax { return .failed }
                if buffer.count >= 4 + length {
                    let body = Array(buffer[4..<4 + length])
                    buffer.removeFirst(4 + length)
                    return .frame(body)
                }
            }
            if let deadlineNs {
                guard let remaining = deadlineNs() else { return .timedOut }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ms = Int32(clamping: (remaining + 999_999) / 1_000_000)
                let ready = poll(&pfd, 1, ms)
                if ready < 0 {
                    if errno == EINTR { continue }
                    return .failed
                }
                if ready == 0 { continue }  // asks deadlineNs again: it decides whether to wait on
            }
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failed
            }
            if n == 0 { return buffer.isEmpty ? .end : .failed }
            buffer.append(contentsOf: scratch[0..<n])
        }
    }
}
