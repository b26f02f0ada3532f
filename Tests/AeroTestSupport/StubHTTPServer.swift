// StubHTTPServer.swift — a one-answer HTTP server on 127.0.0.1 for tests that need a "member"
// answering something a real node never would (an incompatible status document). Every
// request gets the same response and the connection is closed. One thread; each request is
// read with bounded bytes and time; `stop()` must be called (the thread holds the server).
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

public final class StubHTTPServer: @unchecked Sendable {
    // @unchecked: `stopping`, `running` and `served` are guarded by `lock`.

    /// A request head longer than this is answered without reading the rest.
    public static let headBytesMax = 64 * 1024
    /// Bound on reading one request.
    public static let readWaitMs: Int32 = 2_000
    public static let stopWaitMs = 5_000
    static let pollMs: Int32 = 20

    public let port: Int
    private let listenFD: Int32
    private let response: [UInt8]
    private let lock = NSLock()
    private var stopping = false
    private var running = true
    private var served = 0

    /// Listens on 127.0.0.1:`port` (0: ephemeral) and answers every request with `status` and
    /// the JSON `body`.
    public init(port: Int = 0, status: Int = 200, body: String) throws {
        (listenFD, self.port) = try LoopbackSocket.listen(port: port)
        let reason = status == 200 ? "OK" : "Status"
        response = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        Thread { [self] in serve() }.start()
    }

    /// Requests answered so far.
    public var requests: Int { lock.withLock { served } }

    public func stop() {
        lock.withLock { stopping = true }
        _ = Deadline.waitUntilBlocking(timeoutMs: Self.stopWaitMs, pollMs: Int(Self.pollMs)) { !lock.withLock { running } }
        precondition(!lock.withLock { running }, "the stub HTTP server on \(port) did not stop within \(Self.stopWaitMs) ms")
        close(listenFD)
    }

    private func serve() {
        defer { lock.withLock { running = false } }
        while !lock.withLock({ stopping }) {
            guard LoopbackSocket.waitReadable(listenFD, timeoutMs: Self.pollMs) != 0, let fd = LoopbackSocket.accept(listenFD) else { continue }
            readRequest(fd)
            _ = response.withUnsafeBytes { LoopbackSocket.sendAll(fd, $0) }
            lock.withLock { served += 1 }
            shutdown(fd, Int32(SHUT_WR))
            // Let the client read the answer before the socket goes away.
            _ = LoopbackSocket.waitReadable(fd, timeoutMs: Self.readWaitMs)
            close(fd)
        }
    }

    /// Reads the head and a Content-Length body, bounded; the content does not matter.
    private func readRequest(_ fd: Int32) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var needed: Int?
        while received.count < Self.headBytesMax {
            if let needed, received.count >= needed { return }
            guard LoopbackSocket.waitReadable(fd, timeoutMs: Self.readWaitMs) != 0 else { return }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 4096, 0) }
            guard count > 0 else { return }
            received += buffer[0..<count]
            if needed == nil, let end = String(decoding: received, as: UTF8.self).range(of: "\r\n\r\n") {
                let text = String(decoding: received, as: UTF8.self)
                let head = text[..<end.lowerBound].lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                needed = text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound) + length
            }
        }
    }
}
