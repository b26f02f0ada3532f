import AeroCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Whether 127.0.0.1:`port` can be bound right now.
func loopbackPortIsFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

@Suite("aerodb local-cluster", .serialized)
struct LocalClusterTests {
    @Test("start three nodes, write to the primary, read on a replica, status, stop: no process left")
    func startWriteStop() throws {
        // A base port whose six ports are free, below the ephemeral range (bounded search).
        var base = Int.random(in: 10_000...31_000)
        for _ in 0..<100 where !([1, 2, 3, 101, 102, 103].allSatisfy { loopbackPortIsFree(base + $0) }) { base += 7 }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-lc-\(UUID().uuidString)").path
        defer {
            _ = try? RemoteCommandTests.aerodb(["local-cluster", "stop", "--dir", dir])
            try? FileManager.default.removeItem(atPath: dir)
        }
        let start = try RemoteCommandTests.aerodb(["local-cluster", "start", "--nodes", "3", "--dir", dir, "--base-port", String(base)])
        #expect(start.status == 0, "\(start.stdout) \(start.stderr)")
        #expect(start.stdout.contains("n1  http 127.0.0.1:\(base + 1)"))
        let pids = (1...3).compactMap { try? String(contentsOfFile: "\(dir)/n\($0).pid", encoding: .utf8) }
            .compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(pids.count == 3)

        let put = try RemoteCommandTests.aerodb(["put", "demo", "value", "--addr", "127.0.0.1:\(base + 1)"])
        #expect(put.status == 0, "\(put.stderr)")
        let lsn = try JSONParser.parse(put.stdout)["lsn"]?.integerValue ?? 0
        // n3 is an async replica: min_lsn makes the read wait for the write (bounded, then refuses).
        var get = try RemoteCommandTests.aerodb(["get", "demo", "--addr", "127.0.0.1:\(base + 3)", "--min-lsn", String(lsn)])
        for _ in 0..<10 where get.status != 0 {
            get = try RemoteCommandTests.aerodb(["get", "demo", "--addr", "127.0.0.1:\(base + 3)", "--min-lsn", String(lsn)])
        }
        #expect(get.status == 0 && get.stdout == "value\n", "\(get.stderr)")
        let refused = try RemoteCommandTests.aerodb(["put", "demo", "no", "--addr", "127.0.0.1:\(base + 2)"])
        #expect(refused.status == 1 && refused.stderr.contains("REPL-WRITE-ON-REPLICA"))

        let status = try RemoteCommandTests.aerodb(["local-cluster", "status", "--dir", dir])
        #expect(status.stdout.components(separatedBy: "running (pid").count - 1 == 3)
        let again = try RemoteCommandTests.aerodb(["local-cluster", "start", "--nodes", "3", "--dir", dir, "--base-port", String(base)])
        #expect(again.status != 0 && again.stderr.contains("already running"))

        let stop = try RemoteCommandTests.aerodb(["local-cluster", "stop", "--dir", dir])
        #expect(stop.status == 0 && stop.stdout.components(separatedBy: "stopped").count - 1 == 3, "\(stop.stdout)")
        let after = try RemoteCommandTests.aerodb(["local-cluster", "status", "--dir", dir])
        #expect(after.stdout.components(separatedBy: "not started").count - 1 == 3)
    }
}
