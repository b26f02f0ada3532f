// PolicyStartupCheckTests.swift — `aerodb serve` checks its policy_dir before serving (issue 17):
// missing, empty, or holding a policy that fails `aerodb-policy check` refuses the start with
// the file and line; a good one starts and says how many policies it loaded and their digest.
import AeroCore
import AeroTestSupport
import Foundation
import Testing

@Suite("serve checks its policy_dir at start", .serialized)
struct PolicyStartupCheckTests {
    static func serve(_ dataDir: String, policyDir: String) throws -> ProcessRun {
        try ProcessRun.run(builtExecutable("aerodb"), ["serve", "--data-dir", dataDir, "--http", "127.0.0.1:\(try freeLoopbackPort())", "--policy-dir", policyDir],
                           timeoutMs: 20_000)
    }

    @Test("a missing, empty or broken policy_dir refuses the start, naming the directory, file and line")
    func refusedStarts() throws {
        let root = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)

        let missing = try Self.serve(root + "/a", policyDir: root + "/nope")
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(missing.stderr.contains("policy_dir \(root)/nope is unusable: \(root)/nope: no such file or directory"), "\(missing.stderr)")

        let empty = root + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let none = try Self.serve(root + "/b", policyDir: empty)
        #expect(none.status == 1 && none.stderr.contains("holds no policy (*.lua)"), "\(none.stderr)")

        let broken = root + "/broken"
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
        try "return function(facts)\n  return undefined_global_xyz\nend\n".write(toFile: broken + "/bad.lua", atomically: true, encoding: .utf8)
        let bad = try Self.serve(root + "/c", policyDir: broken)
        #expect(bad.status == 1, "\(bad.stderr)")
        #expect(bad.stderr.contains("\(broken)/bad.lua:2: reads global 'undefined_global_xyz'"), "\(bad.stderr)")
        // Nothing was served or created for the refused starts.
        for dir in ["/a", "/b", "/c"] { #expect(!FileManager.default.fileExists(atPath: root + dir + "/wal"), "\(dir)") }
    }

    @Test("a usable policy_dir: the node starts and says how many policies it loaded and their set digest")
    func goodStart() async throws {
        let dataDir = try temporaryDataDir()
        defer { try? FileManager.default.removeItem(atPath: (dataDir as NSString).deletingLastPathComponent) }
        let server = try ServeProcess(dataDir: dataDir, extraArguments: ["--policy-dir", Repository.url("policies").path])
        defer { _ = server.stop() }
        let journal = try String(contentsOfFile: dataDir + "/events.jsonl", encoding: .utf8)
        let shipped = try FileManager.default.contentsOfDirectory(atPath: Repository.url("policies").path).filter { $0.hasSuffix(".lua") && !$0.hasSuffix(".d.lua") }
        #expect(journal.contains("\"policies\":{\"count\":\(shipped.count),\"policy_set_digest\":\""), "\(journal)")
    }
}
