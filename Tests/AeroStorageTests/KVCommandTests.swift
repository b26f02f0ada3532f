import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Foundation
import Testing

/// The command line's exit codes: a missing key exits 1, damage exits 2.
@Suite struct KVCommandTests {
    struct Result { var status: Int32; var stdout: String; var stderr: String }

    func aerodb(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = builtExecutable("aerodb")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        return Result(status: ChildProcess.waitOrKill(process).status, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func putGetDeleteScanAndExitCodes() throws {
        let dir = temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try aerodb(["kv", "put", "--data-dir", dir, "user/1", "alice"]).stdout == "1\n")
        #expect(try aerodb(["kv", "put", "--data-dir", dir, "user/2", "bob"]).stdout == "2\n")
        #expect(try aerodb(["kv", "put", "--data-dir", dir, "other", "x"]).stdout == "3\n")
        let got = try aerodb(["kv", "get", "--data-dir", dir, "user/1"])
        #expect(got.status == 0 && got.stdout == "alice\n")
        let missing = try aerodb(["kv", "get", "--data-dir", dir, "user/9"])
        #expect(missing.status == 1 && missing.stderr.contains("not found"))
        #expect(try aerodb(["kv", "scan", "--data-dir", dir, "user/"]).stdout == "user/1\talice\nuser/2\tbob\n")
        #expect(try aerodb(["kv", "delete", "--data-dir", dir, "user/1"]).stdout == "4\n")
        #expect(try aerodb(["kv", "get", "--data-dir", dir, "user/1"]).status == 1)
        let verify = try aerodb(["wal", "verify", dir, "--format", "json"])
        #expect(verify.status == 0 && verify.stdout.contains("\"ok\" : true"))
        #expect(try aerodb(["wal", "inspect", dir]).stdout.contains("LSN 1...4"))

        // Damage before the tail: flip a payload byte of record 2 of 4.
        let segment = dir + "/" + WALFormat.segmentName(firstLSN: LSN(1))
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        let offsets = recordOffsets(bytes)
        bytes[offsets[1] + WALFormat.recordHeaderBytes + 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let damaged = try aerodb(["kv", "get", "--data-dir", dir, "user/2"])
        #expect(damaged.status == 2 && damaged.stderr.contains("storage.recovery.corrupt-record") && damaged.stderr.contains("offset \(offsets[1])"))
        let verifyDamaged = try aerodb(["wal", "verify", dir])
        #expect(verifyDamaged.status == 2 && verifyDamaged.stdout.contains("DAMAGE"))
        #expect(try aerodb(["wal", "verify", dir, "--format", "json"]).stdout.contains("\"kind\" : \"corrupt-record\""))
    }
}
