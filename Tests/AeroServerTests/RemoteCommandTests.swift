import AeroCore
import Foundation
import Testing
import AeroTestSupport

/// `aerodb status|get|put|delete --addr` against a real `aerodb serve`.
@Suite("aerodb client commands", .serialized)
struct RemoteCommandTests {
    typealias Run = ProcessRun

    static func aerodb(_ arguments: [String]) throws -> Run {
        try ProcessRun.run(builtExecutable("aerodb"), arguments)
    }

    @Test("put, get, delete and status from the shell, with exit codes 0, 1 and 2")
    func commands() throws {
        let dataDir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dataDir as NSString).deletingLastPathComponent) }
        let server = try ServeProcess(dataDir: dataDir)
        let addr = "127.0.0.1:\(server.port)"

        let put = try Self.aerodb(["put", "a/b c", "hello", "--addr", addr])
        #expect(put.status == 0)
        #expect(try JSONParser.parse(put.stdout) == .object(["lsn": .integer(1), "epoch": .integer(1)]))

        let get = try Self.aerodb(["get", "a/b c", "--addr", addr, "--min-lsn", "1"])
        #expect(get.status == 0 && get.stdout == "hello\n")
        #expect(get.stderr.contains("lsn=1 epoch=1"))

        let status = try Self.aerodb(["status", "--addr", addr])
        #expect(status.status == 0)
        #expect(try JSONParser.parse(status.stdout)["node"]?["durable_lsn"] == .integer(1))

        #expect(try Self.aerodb(["delete", "a/b c", "--addr", addr]).status == 0)
        let missing = try Self.aerodb(["get", "a/b c", "--addr", addr])
        #expect(missing.status == 1)
        #expect(try JSONParser.parse(missing.stderr)["error"]?["code"] == .string("REQ-NOT-FOUND"))

        #expect(server.stop() == 0)
        let unreachable = try Self.aerodb(["status", "--addr", addr, "--timeout-ms", "2000"])
        #expect(unreachable.status == 2 && unreachable.stderr.contains("no answer from"))
        #expect(try Self.aerodb(["status", "--addr", "nonsense"]).status == 2)
    }
}
