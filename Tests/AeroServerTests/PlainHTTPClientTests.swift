import AeroTestSupport
import Foundation
import Testing

@testable import AeroServer

#if canImport(Glibc)
    import Glibc
#endif

/// PlainHTTPClient (the CLI's and the candidate's HTTP client): an answer is read whole, and
/// each failure names its stage (connect, answer, timeout) within the one deadline.
@Suite("PlainHTTPClient")
struct PlainHTTPClientTests {
    @Test("a Content-Length answer is read whole, with its status and headers")
    func readsAnAnswer() throws {
        let body = String(repeating: "0123456789", count: 20_000)  // 200 kB: several reads
        let stub = try StubHTTPServer(status: 409, body: body)
        defer { stub.stop() }
        let reply = try PlainHTTPClient.request("POST", host: "127.0.0.1", port: stub.port, path: "/v1/x", body: Array("{}".utf8),
                                                contentType: "application/json", timeoutMs: 5_000)
        #expect(reply.status == 409)
        #expect(reply.body.count == body.utf8.count && String(decoding: reply.body, as: UTF8.self) == body)
        #expect(reply.headers["content-length"] == String(body.utf8.count))
    }

    /// The stage the request failed at; nil when it answered.
    static func stage(_ body: () throws -> PlainHTTPClient.Reply) -> PlainHTTPClient.HTTPClientError.Stage? {
        do {
            _ = try body()
            return nil
        } catch let error as PlainHTTPClient.HTTPClientError {
            return error.stage
        } catch {
            return nil
        }
    }

    @Test("nothing listening is a connect failure; a listener that never answers is a timeout within the deadline")
    func stages() throws {
        let closedPort = try freeLoopbackPort()
        #expect(Self.stage { try PlainHTTPClient.request("GET", host: "127.0.0.1", port: closedPort, path: "/", body: nil, timeoutMs: 2_000) } == .connect)
        // Listening but never accepting: the kernel completes the connection, no answer comes.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        #expect(bound == 0 && listen(fd, 4) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let started = DispatchTime.now().uptimeNanoseconds
        #expect(Self.stage { try PlainHTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/", body: nil, timeoutMs: 300) } == .timeout)
        let tookMs = (DispatchTime.now().uptimeNanoseconds - started) / 1_000_000
        // The deadline holds (300 ms asked; 5 s is far beyond any scheduling delay).
        #expect(tookMs >= 300 && tookMs < 5_000, "took \(tookMs) ms")
    }
}
