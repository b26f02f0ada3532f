import AeroCore
import AeroServer
import Foundation
import Testing

@Suite("Event journal")
struct EventJournalTests {
    static func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-journal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    static func lines(_ dir: String) throws -> [JSONValue] {
        let text = try String(contentsOfFile: (dir as NSString).appendingPathComponent(EventJournal.fileName), encoding: .utf8)
        #expect(text.isEmpty || text.hasSuffix("\n"), "no partial line")
        return try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    @Test("events are appended as canonical JSON lines with node, seq and time")
    func appendLines() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try EventJournal(directory: dir, node: "n1", clockMs: { 1_000 })
        #expect(try journal.append("started", fields: ["version": .string("0.6.0")], durability: .lazy) == 1)
        #expect(try journal.append("epoch_changed", fields: ["epoch": .integer(2)], durability: .sync) == 2)
        try journal.close()
        let lines = try Self.lines(dir)
        #expect(lines.count == 2)
        #expect(lines[0] == .object(["event": .string("started"), "node": .string("n1"), "seq": .integer(1), "ts_ms": .integer(1000),
                                     "fields": .object(["version": .string("0.6.0")])]))
        #expect(lines[1]["fields"]?["epoch"] == .integer(2))
        #expect(throws: JournalError.self) { try journal.append("late", fields: [:], durability: .lazy) }
    }

    @Test("a refusal carries its rule id, code, message and explanation")
    func refusal() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try EventJournal(directory: dir, node: "n2")
        let refusal = Refusal.writeOnReplica(node: "n2", primary: "n1", epoch: Epoch(3))
        try journal.appendRefusal(refusal, context: ["key": .string("k1")])
        try journal.close()
        let fields = try #require(try Self.lines(dir).first?["fields"])
        #expect(fields["rule"] == .string("REPL-WRITE-ON-REPLICA"))
        #expect(fields["code"] == .string("REPL-WRITE-ON-REPLICA"))
        #expect(fields["key"] == .string("k1"))
        #expect(fields["message"]?.stringValue?.contains("primary n1") == true)
        #expect(fields["explanation"]?["facts"]?["epoch"] == .integer(3))
    }

    @Test("an over-long event keeps its rule id and is cut to the line bound")
    func bounded() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try EventJournal(directory: dir, node: "n1", lineBytesMax: 1024)
        let huge = String(repeating: "x", count: 5000)
        try journal.appendRefusal(Refusal.request(.badRequest, huge))
        try journal.append("note", fields: ["text": .string(huge)], durability: .lazy)
        try journal.close()
        let raw = try String(contentsOfFile: (dir as NSString).appendingPathComponent(EventJournal.fileName), encoding: .utf8)
        for line in raw.split(separator: "\n") { #expect(line.utf8.count + 1 <= 1024) }
        let lines = try Self.lines(dir)
        #expect(lines[0]["fields"]?["rule"] == .string("REQ-BAD-REQUEST"))
        #expect((lines[0]["fields"]?["truncated_bytes"]?.integerValue ?? 0) > 5000)
        #expect(lines[1]["fields"]?["rule"] == nil)
        #expect(lines[1]["seq"] == .integer(2))
    }

    @Test("reopening continues the sequence after the lines already written")
    func reopen() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try EventJournal(directory: dir, node: "n1")
        try first.append("a", fields: [:], durability: .lazy)
        try first.append("b", fields: [:], durability: .lazy)
        try first.close()
        let second = try EventJournal(directory: dir, node: "n1")
        #expect(try second.append("c", fields: [:], durability: .sync) == 3)
        try second.close()
        #expect(try Self.lines(dir).map { $0["seq"] } == [.integer(1), .integer(2), .integer(3)])
    }

    @Test("concurrent appends never interleave inside a line")
    func concurrent() async throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try EventJournal(directory: dir, node: "n1")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for i in 0..<50 {
                        try journal.append("tick", fields: ["task": .integer(Int64(task)), "i": .integer(Int64(i)),
                                                            "pad": .string(String(repeating: "p", count: 300))], durability: .lazy)
                    }
                }
            }
            try await group.waitForAll()
        }
        try journal.close()
        let lines = try Self.lines(dir)
        #expect(lines.count == 400)
        #expect(Set(lines.compactMap { $0["seq"]?.integerValue }) == Set(1...400))
    }

    @Test("a journal in a missing directory fails to open, naming the path")
    func unopenable() {
        #expect { _ = try EventJournal(directory: "/nonexistent-aerodb-dir/x", node: "n1") } throws: { error in
            (error as? JournalError)?.path.hasPrefix("/nonexistent-aerodb-dir/x") == true
        }
    }
}
