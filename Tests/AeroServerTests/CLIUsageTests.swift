// CLIUsageTests.swift — `aerodb`'s usage errors (issue 17): exit code 2 for every kind of
// unusable request, addresses refused before any request with the value quoted and what is
// expected said, a port clash named with the node and address, a decision asked of the wrong
// node naming the node its id belongs to, and the messages pinned.
import AeroCore
import Foundation
import Testing
import AeroTestSupport

@Suite("aerodb usage errors: exit 2 and messages that name the mistake", .serialized)
struct CLIUsageTests {
    typealias Run = RemoteCommandTests.Run
    func aerodb(_ arguments: [String]) throws -> Run { try RemoteCommandTests.aerodb(arguments) }

    @Test("argument errors exit 2 (not swift-argument-parser's 64) and say what is wrong")
    func argumentErrorsExitTwo() throws {
        let dir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let cases: [([String], String)] = [
            (["promote", "--addr", "127.0.0.1:7002"], "--kind"),
            (["promote", "--addr", "127.0.0.1:7002", "--kind", "takeover"], "takeover"),
            (["put", "k", "v", "--addr", "127.0.0.1"], "no port given"),
            (["serve", "--data-dir", dir + "/s", "--http", "127.0.0.1:1", "--bogus"], "--bogus"),
            (["serve"], "give --config FILE, or --data-dir DIR and --http HOST:PORT"),
            (["reseed", "--bogus"], "--bogus"),
            (["kv", "scan", "--data-dir", dir, "--limit", "0"], "--limit must be at least 1"),
            (["frobnicate"], "frobnicate"),
            (["decisions", "show", "n2-1-1", "--addr", "127.0.0.1:7002", "--facts", "--explain"], "--facts and --explain each print one part of the record"),
            (["promote", "--addr", "127.0.0.1:7002", "--kind", "switchover", "--expect-facts-digest", "abc123"],
             "--expect-facts-digest \"abc123\": expected the 64 lowercase hex characters of the dry run's \"facts digest\" (6 given)"),
        ]
        for (arguments, mention) in cases {
            let run = try aerodb(arguments)
            #expect(run.status == 2, "\(arguments): \(run.status) \(run.stderr)")
            #expect(run.stderr.contains(mention), "\(arguments): \(run.stderr)")
        }
        // Help is not an error.
        #expect(try aerodb(["promote", "--help"]).status == 0)
    }

    @Test("a bad --addr is refused before any request, quoting the value and saying what is expected")
    func badAddresses() throws {
        let cases: [(String, String)] = [
            ("127.0.0.1:343033", "--addr \"127.0.0.1:343033\": the port 343033 is out of range (1-65535)"),
            ("127.0.0.1:0", "the port 0 is out of range"),
            ("127.0.01:34303", "\"127.0.01\" is not an IPv4 address (four numbers 0-255 separated by dots)"),
            ("300.1.1.1:7001", "\"300.1.1.1\" is not an IPv4 address"),
            ("http://127.0.0.1:34303", "give host:port without a URL scheme (e.g. 127.0.0.1:34303)"),
            ("127.0.0.1:http", "the port \"http\" is not a number"),
            ("node_a:7001", "\"node_a\" is not a host name"),
            ("::1:7001", "an IPv6 address must be in brackets"),
            ("[:]:7001", "\"[:]\" is not a bracketed IPv6 address"),
            (":7001", "no host given"),
        ]
        for (addr, message) in cases {
            let run = try aerodb(["status", "--addr", addr])
            #expect(run.status == 2, "\(addr): \(run.stderr)")
            #expect(run.stderr.contains(message), "\(addr): \(run.stderr)")
        }
        let primary = try aerodb(["rejoin", "--addr", "127.0.0.1:7001", "--primary-addr", "127.0.0.1:99999"])
        #expect(primary.status == 2 && primary.stderr.contains("--primary-addr \"127.0.0.1:99999\": the port 99999 is out of range"), "\(primary.stderr)")
        // Accepted shapes reach the transport (nothing listens on port 1): exit 2, "no answer".
        for addr in ["localhost:1", "[::1]:1", "127.0.0.1:1"] {
            let run = try aerodb(["status", "--addr", addr, "--timeout-ms", "2000"])
            #expect(run.status == 2 && run.stderr.contains("no answer from \(addr)"), "\(addr): \(run.stderr)")
        }
    }

    @Test("the peer port given as --addr is named as the likely mistake")
    func peerPortAsAddr() throws {
        // A listener that accepts and closes without a byte, as the peer port does to HTTP.
        let listener = try SilentListener()
        defer { listener.stop() }
        let run = try aerodb(["status", "--addr", "127.0.0.1:\(listener.port)", "--timeout-ms", "3000"])
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.contains("is it a node's peer port? --addr wants the node's HTTP address"), "\(run.stderr)")
    }

    @Test("local-cluster start names the node and address whose port is taken; kv scan says when --limit cut the list")
    func portClashAndScanLimit() throws {
        let listener = try SilentListener()
        defer { listener.stop() }
        let dir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        // n2's HTTP port is base + 2.
        let run = try aerodb(["local-cluster", "start", "--nodes", "3", "--dir", dir + "/cluster", "--base-port", String(listener.port - 2)])
        #expect(run.status == 1, "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("n2's HTTP address 127.0.0.1:\(listener.port) is already in use"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/cluster/n1.pid"), "no node was started")

        for i in 0..<3 { #expect(try aerodb(["kv", "put", "k\(i)", "v", "--data-dir", dir + "/kv"]).status == 0) }
        let cut = try aerodb(["kv", "scan", "--data-dir", dir + "/kv", "--limit", "2"])
        #expect(cut.status == 0 && cut.stdout == "k0\tv\nk1\tv\n", "\(cut.stdout)")
        #expect(cut.stderr.contains("stopped after --limit 2 keys; more keys match"), "\(cut.stderr)")
        let all = try aerodb(["kv", "scan", "--data-dir", dir + "/kv", "--limit", "3"])
        #expect(all.status == 0 && all.stdout.split(separator: "\n").count == 3 && !all.stderr.contains("stopped"), "\(all.stderr)")
    }

    @Test("a decision asked of the wrong node names the node its id belongs to")
    func decisionOnWrongNode() throws {
        let dataDir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dataDir as NSString).deletingLastPathComponent) }
        let server = try ServeProcess(dataDir: dataDir)
        defer { _ = server.stop() }
        let run = try aerodb(["decisions", "show", "n2-1796317167432-1", "--addr", "127.0.0.1:\(server.port)"])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("the id belongs to n2, which is not a member of this cluster"), "\(run.stderr)")
    }
}

/// Accepts TCP connections on 127.0.0.1 and closes each at once, sending nothing.
final class SilentListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let thread: Thread

    init() throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(socketFD, pointer, length) == 0 && listen(socketFD, 16) == 0 && getsockname(socketFD, pointer, &length) == 0
            }
        }
        guard bound else { close(socketFD); throw POSIXError(.EADDRINUSE) }
        fd = socketFD
        port = Int(UInt16(bigEndian: address.sin_port))
        thread = Thread {
            while true {
                let client = accept(socketFD, nil, nil)
                if client < 0 { return }
                close(client)
            }
        }
        thread.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
