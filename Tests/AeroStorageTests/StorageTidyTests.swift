import Foundation
import Testing

/// Tidy checks that run with the suite (after TigerBeetle's tidy.zig): AeroStorage's files stay
/// small enough to read, and the names its design notes point at exist.
@Suite struct StorageTidyTests {
    /// No Swift or C file under Sources/AeroStorage is longer than this.
    static let fileLinesMax = 600

    static let sources: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/AeroStorage")

    static func files() throws -> [(name: String, text: String)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: sources.path)
            .filter { $0.hasSuffix(".swift") || $0.hasSuffix(".c") || $0.hasSuffix(".h") }.sorted()
        return try names.map { ($0, try String(contentsOf: sources.appendingPathComponent($0), encoding: .utf8)) }
    }

    @Test func noFileIsOverTheLineLimit() throws {
        let files = try Self.files()
        #expect(files.count >= 10, "found \(files.count) files under \(Self.sources.path)")
        for (name, text) in files {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
            #expect(lines <= Self.fileLinesMax, "\(name) has \(lines) lines; split it (at most \(Self.fileLinesMax))")
        }
    }

    /// The header comment of a file: its design notes.
    static func designNotes(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { $0.hasPrefix("//") || $0.isEmpty }.joined(separator: "\n")
    }

    /// `Type.member`, `member`, `member(_:)` or `Type` in backticks; file names, paths, rule ids
    /// and commands are not names.
    static func referencedName(_ span: Substring) -> (type: String?, member: String?)? {
        var s = span.hasPrefix(".") ? span.dropFirst() : span
        if let paren = s.firstIndex(of: "(") { s = s[..<paren] }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        let identifier = { (p: Substring) in
            !p.isEmpty && p.first!.isLetter && p.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
        }
        guard (1...2).contains(parts.count), parts.allSatisfy(identifier) else { return nil }
        if parts.count == 2 {
            guard parts[0].first!.isUppercase else { return nil }  // `authority.json` is a file
            return (String(parts[0]), String(parts[1]))
        }
        return parts[0].first!.isUppercase ? (String(parts[0]), nil) : (nil, String(parts[0]))
    }

    static func declares(_ source: String, member: String) -> Bool {
        ["func ", "var ", "let ", "case ", "init"].contains { keyword in
            keyword == "init" ? member == "init" : source.contains(keyword + member)
        }
    }

    static func declares(_ source: String, type: String) -> Bool {
        ["struct ", "class ", "enum ", "protocol ", "extension ", "typealias "].contains { source.contains($0 + type) }
    }

    @Test func namesInTheDesignNotesExist() throws {
        let files = try Self.files()
        let source = files.map(\.text).joined(separator: "\n")
        var checked = 0
        for (name, text) in files {
            let notes = Self.designNotes(text)
            let spans = notes.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map(\.element)
            for span in spans {
                guard let ref = Self.referencedName(span) else { continue }
                checked += 1
                if let type = ref.type {
                    #expect(Self.declares(source, type: type), "\(name): the design notes name `\(span)`, but no type \(type) is declared in AeroStorage")
                }
                if let member = ref.member {
                    #expect(Self.declares(source, member: member), "\(name): the design notes name `\(span)`, but nothing named \(member) is declared in AeroStorage")
                }
            }
        }
        print("[StorageTidyTests] \(checked) names in AeroStorage's design notes checked")
        #expect(checked >= 40, "the notes name only \(checked) things in backticks: is the parser broken?")
    }
}
