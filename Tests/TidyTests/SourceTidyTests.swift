import AeroTestSupport
import Foundation
import Testing

/// Tidy checks over Sources (after TigerBeetle's tidy.zig), run with the suite: files stay small
/// enough to read, the names design notes point at exist, and no journal write is dropped.
@Suite struct SourceTidyTests {
    /// No Swift or C file under Sources is longer than this (STYLE: small files, one purpose).
    static let fileLinesMax = 600

    /// Files allowed over the limit for now, each with the ceiling it may not grow past.
    static let overLimitCeilings: [String: Int] = [:]

    static func lineCount(_ text: String) -> Int {
        text.split(separator: "\n", omittingEmptySubsequences: false).count - (text.hasSuffix("\n") ? 1 : 0)
    }

    @Test func noSourceFileIsOverTheLineLimit() throws {
        let files = try Repository.files(under: "Sources", suffixes: [".swift", ".c", ".h"])
        #expect(files.count >= 100, "found only \(files.count) files under Sources")
        for path in files {
            let lines = Self.lineCount(try Repository.text(path))
            let limit = Self.overLimitCeilings[path] ?? Self.fileLinesMax
            #expect(lines <= limit, "\(path) has \(lines) lines; split it (at most \(limit))")
        }
        for path in Self.overLimitCeilings.keys {
            #expect(files.contains(path), "\(path) is allow-listed but does not exist: remove its entry")
        }
    }

    /// What a `code` span of design notes names: `Type.member`, `Type`, `member(...)` or a
    /// camelCase `member`. File names, paths, JSON and config keys (snake_case), HTTP methods,
    /// commands and single lowercase words (which may be prose or a field) are not names.
    static func referencedName(_ span: Substring) -> (type: String?, member: String?, qualified: Bool)? {
        var s = span.hasPrefix(".") ? span.dropFirst() : span
        let called = s.contains("(")
        if let paren = s.firstIndex(of: "(") { s = s[..<paren] }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        let identifier = { (p: Substring) in
            !p.isEmpty && p.first!.isLetter && p.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && !p.contains("_")
        }
        guard (1...2).contains(parts.count), parts.allSatisfy(identifier) else { return nil }
        if ["swift", "md", "c", "h", "json", "lua", "log", "jsonl", "tmp"].contains(String(parts.last!)) { return nil }
        if parts.count == 2 {
            guard parts[0].first!.isUppercase else { return nil }  // `authority.json` is a file
            return (String(parts[0]), String(parts[1]), true)
        }
        let name = parts[0]
        if name.allSatisfy({ $0.isUppercase || $0.isNumber }) { return nil }  // PUT, GET
        if name.first!.isUppercase { return (String(name), nil, false) }
        guard called || name.contains(where: \.isUppercase) else { return nil }  // a plain word
        return (nil, String(name), called)
    }

    /// Names the standard library, Foundation or a package declares, which notes may cite.
    static let outsideNames: Set<String> = ["allCases", "preconditionFailure", "MetricsSystem", "bootstrap", "init"]

    static func declares(_ source: String, member: String) -> Bool {
        let name = NSRegularExpression.escapedPattern(for: member)
        return !Tidy.matches(#"\b(func|var|let|case)\s+"# + name + #"\b"#, in: source).isEmpty
            || !Tidy.matches(#"\bcase\s[^\n]*,\s*"# + name + #"\b"#, in: source).isEmpty
    }

    static func declares(_ source: String, type: String) -> Bool {
        let name = NSRegularExpression.escapedPattern(for: type)
        return !Tidy.matches(#"\b(struct|class|enum|protocol|extension|typealias|actor)\s+"# + name + #"\b"#, in: source).isEmpty
    }

    @Test func namesInTheDesignNotesExist() throws {
        let files = try Repository.files(under: "Sources", suffixes: [".swift"])
        var byModule: [String: String] = [:]
        for path in files { byModule[path.split(separator: "/")[1].replacingOccurrences(of: "-", with: "_"), default: ""] += try Repository.text(path) + "\n" }
        let everything = byModule.values.joined(separator: "\n")
        var checked = 0
        for path in files {
            let text = try Repository.text(path)
            let module = path.split(separator: "/")[1].replacingOccurrences(of: "-", with: "_")
            // A qualified or called name must be declared in the file's module or one it imports.
            let imported = Tidy.matches(#"^\s*(?:@testable\s+)?import\s+(\w+)"#, in: text, options: .anchorsMatchLines).map { $0[1] }
            let visible = ([module] + imported).compactMap { byModule[$0] }.joined(separator: "\n")
            for span in Tidy.codeSpans(Tidy.designNotes(text)) {
                guard let ref = Self.referencedName(span) else { continue }
                checked += 1
                let scope = ref.qualified ? visible : everything
                if let type = ref.type, !Self.outsideNames.contains(type) {
                    #expect(Self.declares(scope, type: type), "\(path): the design notes name `\(span)`, but no type \(type) is declared where that file can see it")
                }
                if let member = ref.member, !Self.outsideNames.contains(member), !(ref.type.map { Self.outsideNames.contains($0) } ?? false) {
                    #expect(Self.declares(scope, member: member), "\(path): the design notes name `\(span)`, but nothing named \(member) is declared where that file can see it")
                }
            }
        }
        print("[SourceTidyTests] \(checked) names in the design notes of \(files.count) files checked")
        #expect(checked >= 200, "the notes name only \(checked) things in backticks: is the parser broken?")
    }

    /// A journal append that fails is handled: `append` throws to a caller that fails with it,
    /// `record` returns the error and counts it (EventJournal rule 6). `try?` would drop it.
    @Test func noJournalWriteIsDroppedSilently() throws {
        var appends = 0
        for path in try Repository.files(under: "Sources", suffixes: [".swift"]) {
            for (number, line) in try Repository.text(path).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard line.contains("journal.append") || line.contains("journal.record") else { continue }
                appends += 1
                #expect(!line.contains("try?") && !line.contains("try!"), "\(path):\(number + 1) drops a journal write: \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(appends >= 20, "found only \(appends) journal writes: is the scan broken?")
    }
}
