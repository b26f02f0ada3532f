// PlainHTTPClient.swift — one HTTP/1.1 request over a plain socket, bounded by a deadline: what
// `aerodb`'s client commands and a candidate's calls to other members (PromotionHTTP.swift)
// send to a node's HTTP API.
//
// Why not URLSession: on Linux it starts libcurl's multi handle and its dispatch machinery on
// first use and drives every request through them; measured on the default cluster, an
// `aerodb status` run cost 16 ms more than `aerodb --version` (debug build), and each peer call
// of a promotion several ms (docs/benchmarks.md, "Promotion latency"). A node's API needs none
// of what curl adds (TLS, redirects, proxies, cookies): one request, `Connection: close`, an
// answer with Content-Length or chunked, or read to EOF.
//
// Rules:
//   1. Every wait is bounded by one monotonic deadline (`timeoutMs` from the call): connect,
//      every send and every receive poll(2) for at most what is left of it.
//   2. An answer is bounded: at most `answerBytesMax` bytes; more is an error, never a hang.
//   3. Errors say which stage failed (`HTTPClientError.stage`), so a caller can say "nothing
//      listens there" (connect refused) apart from "accepted but sent no HTTP answer" (a
//      node's peer port) and "no answer within the timeout".
//   4. Blocking: callers in async code run it off the cooperative pool (`send` below).

import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum PlainHTTPClient {
    /// An answer larger than this is refused (a status with a full facts document is < 1 MiB).
    public static let answerBytesMax = 64 << 20

    public struct Reply: Sendable {
        public var status: Int
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: [UInt8]
    }

    public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
        public enum Stage: String, Sendable {
            /// The name did not resolve, or no address accepted the connection.
            case connect
            /// The deadline passed (at any stage).
            case timeout
            /// The connection closed, or the bytes were not an HTTP answer.
            case answer
        }
        public let stage: Stage
        public let message: String
        public var description: String { message }
    }

    /// The request on a dispatch thread, so that no cooperative thread blocks on the socket.
    public static func send(_ method: String, host: String, port: Int, path: String, body: [UInt8]?,
                            contentType: String? = nil, timeoutMs: UInt64) async throws(HTTPClientError) -> Reply {
        let result: Result<Reply, HTTPClientError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do throws(HTTPClientError) {
                    continuation.resume(returning: .success(try request(method, host: host, port: port, path: path, body: body,
                                                                        contentType: contentType, timeoutMs: timeoutMs)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// One request, blocking the calling thread for at most `timeoutMs`.
    public static func request(_ method: String, host: String, port: Int, path: String, body: [UInt8]?,
                               contentType: String? = nil, timeoutMs: UInt64) throws(HTTPClientError) -> Reply {
        let deadlineNs = DispatchTime.now().uptimeNanoseconds + timeoutMs * 1_000_000
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let fd = try connect(host: bareHost, port: port, deadlineNs: deadlineNs)
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if body != nil || method == "POST" || method == "PUT" { head += "Content-Length: \(body?.count ?? 0)\r\n" }
        head += "\r\n"
        try sendAll(fd, Array(head.utf8) + (body ?? []), deadlineNs: deadlineNs)
        return try readReply(fd, deadlineNs: deadlineNs, method: method)
    }

    // MARK: Connect

    private static func connect(host: String, port: Int, deadlineNs: UInt64) throws(HTTPClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw HTTPClientError(stage: .connect, message: "cannot resolve \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else {
                lastError = String(cString: strerror(errno))
                close(fd)
                continue
            }
            do throws(HTTPClientError) {
                try waitFor(fd, events: Int16(POLLOUT), deadlineNs: deadlineNs)
            } catch {
                close(fd)
                throw error
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError == 0 { return fd }
            lastError = String(cString: strerror(soError))
            close(fd)
        }
        throw HTTPClientError(stage: .connect, message: "could not connect to \(host):\(port): \(lastError)")
    }

    /// poll(2) until `events` or the deadline; EINTR retries within the same deadline.
    private static func waitFor(_ fd: Int32, events: Int16, deadlineNs: UInt64) throws(HTTPClientError) {
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadlineNs else { throw HTTPClientError(stage: .timeout, message: "no answer within the timeout") }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let leftMs = Int32(clamping: (deadlineNs - now + 999_999) / 1_000_000)
            let ready = poll(&pfd, 1, leftMs)
            if ready > 0 { return }
            if ready < 0 && errno != EINTR {
                throw HTTPClientError(stage: .answer, message: "poll failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: Send, receive

    private static func sendAll(_ fd: Int32, _ bytes: [UInt8], deadlineNs: UInt64) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 { offset += sent; continue }
            if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                try waitFor(fd, events: Int16(POLLOUT), deadlineNs: deadlineNs)
                continue
            }
            throw HTTPClientError(stage: .answer, message: "the connection closed while sending: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads more bytes into `buffer`; false at EOF.
    private static func receive(_ fd: Int32, into buffer: inout [UInt8], deadlineNs: UInt64) throws(HTTPClientError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got > 0 {
                guard buffer.count + got <= answerBytesMax else {
                    throw HTTPClientError(stage: .answer, message: "the answer exceeds \(answerBytesMax) bytes")
                }
                buffer += chunk[0..<got]
                return true
            }
            if got == 0 { return false }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                try waitFor(fd, events: Int16(POLLIN), deadlineNs: deadlineNs)
                continue
            }
            throw HTTPClientError(stage: .answer, message: "the connection failed: \(String(cString: strerror(errno)))")
        }
    }

    private static func readReply(_ fd: Int32, deadlineNs: UInt64, method: String) throws(HTTPClientError) -> Reply {
        var buffer: [UInt8] = []
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            guard try receive(fd, into: &buffer, deadlineNs: deadlineNs) else {
                throw HTTPClientError(stage: .answer, message: buffer.isEmpty ? "Empty reply from server" : "the connection closed inside the answer's head")
            }
            headEnd = find(separator, in: buffer)
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw HTTPClientError(stage: .answer, message: "not an HTTP answer")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(buffer[(headEnd! + 4)...])
        if method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
            return Reply(status: status, headers: headers, body: [])
        }
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            return Reply(status: status, headers: headers, body: try dechunk(fd, body, deadlineNs: deadlineNs))
        }
        if let lengthText = headers["content-length"] {
            guard let length = Int(lengthText), length >= 0, length <= answerBytesMax else {
                throw HTTPClientError(stage: .answer, message: "bad Content-Length \(lengthText.prefix(40))")
            }
            while body.count < length {
                guard try receive(fd, into: &body, deadlineNs: deadlineNs) else {
                    throw HTTPClientError(stage: .answer, message: "the connection closed after \(body.count) of \(length) body bytes")
                }
            }
            return Reply(status: status, headers: headers, body: Array(body.prefix(length)))
        }
        while try receive(fd, into: &body, deadlineNs: deadlineNs) {}
        return Reply(status: status, headers: headers, body: body)
    }

    /// A chunked body (RFC 9112 §7.1), trailers ignored.
    private static func dechunk(_ fd: Int32, _ start: [UInt8], deadlineNs: UInt64) throws(HTTPClientError) -> [UInt8] {
        var raw = start, out: [UInt8] = [], offset = 0
        let crlf: [UInt8] = [13, 10]
        while true {
            var lineEnd = find(crlf, in: raw, from: offset)
            while lineEnd == nil {
                guard try receive(fd, into: &raw, deadlineNs: deadlineNs) else { throw HTTPClientError(stage: .answer, message: "the chunked answer ended early") }
                lineEnd = find(crlf, in: raw, from: offset)
            }
            let sizeText = String(decoding: raw[offset..<lineEnd!], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0, out.count + size <= answerBytesMax else {
                throw HTTPClientError(stage: .answer, message: "bad chunk size \(sizeText.prefix(20))")
            }
            if size == 0 { return out }
            let dataStart = lineEnd! + 2
            while raw.count < dataStart + size + 2 {
                guard try receive(fd, into: &raw, deadlineNs: deadlineNs) else { throw HTTPClientError(stage: .answer, message: "the chunked answer ended early") }
            }
            out += raw[dataStart..<(dataStart + size)]
            offset = dataStart + size + 2
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int = 0) -> Int? {
        guard haystack.count >= needle.count + start else { return nil }
        var i = start
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}
