// NodeStatusTidyTests.swift — the node's facts are built in one place (NodeStatus.swift) and
// no measured field there is a literal.
import AeroCore
import AeroTestSupport
import Foundation
import Testing

/// Tidy (after TigerBeetle's tidy.zig): the node's facts are built in one place, and there no
/// measured field is a literal; no other AeroServer file writes the node shape by hand.
@Suite("Node status tidy")
struct NodeStatusTidyTests {
    static let server = Repository.url("Sources/AeroServer")

    /// The arguments of the one `NodeFacts(` call in NodeStatus.swift, by label.
    static func arguments() throws -> [(label: String, value: String)] {
        let text = try String(contentsOf: server.appendingPathComponent("NodeStatus.swift"), encoding: .utf8)
        let calls = text.components(separatedBy: "return NodeFacts(")
        #expect(calls.count == 2, "NodeStatus.swift builds NodeFacts exactly once")
        var out: [(String, String)] = []
        for line in calls[1].split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard let colon = trimmed.firstIndex(of: ":"), trimmed.first?.isLetter == true else { continue }
            let label = String(trimmed[..<colon])
            var value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if let comment = value.range(of: "//") { value = String(value[..<comment.lowerBound]).trimmingCharacters(in: .whitespaces) }
            if value.hasSuffix(",") { value.removeLast() }
            if value.hasSuffix(")") && label == "engineVersion" { value.removeLast() }
            out.append((label, value))
            if label == "engineVersion" { break }
        }
        return out
    }

    @Test("every node field is passed, and none of the measured ones is a literal")
    func noLiteralField() throws {
        let args = try Self.arguments()
        let labels = args.map(\.label)
        #expect(labels == ["id", "role", "reachable", "epoch", "durableLSN", "appliedLSN", "ackedLSN", "primaryAckedLSN",
                           "wal", "recovering", "following", "lastContactMs", "labels", "policySetDigest", "engineVersion"], "\(labels)")
        let literals: Set<String> = ["true", "false", "nil", ".null", "LSN.zero", ".zero", "[:]", "0"]
        for (label, value) in args where label != "reachable" {
            #expect(!literals.contains(value), "\(label) is the literal \(value)")
            #expect(!value.contains("WALFacts(continuous: true") && !value.contains("corrupt: false"), "\(label): \(value)")
        }
    }

    @Test("no other AeroServer file writes a node field name: the shape lives in FactsJSON")
    func shapeInOnePlace() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.server.path).filter { $0.hasSuffix(".swift") }
        #expect(names.count >= 20)
        for name in names {
            let text = try String(contentsOf: Self.server.appendingPathComponent(name), encoding: .utf8)
            for field in ["\"primary_acked_lsn\"", "\"last_contact_ms\"", "\"recovering\"", "\"acked_lsn\"", "\"wal\""] {
                #expect(!text.contains(field), "\(name) writes \(field) by hand")
            }
        }
    }
}
