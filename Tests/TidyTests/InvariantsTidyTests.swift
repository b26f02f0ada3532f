import AeroTestSupport
import Foundation
import Testing

/// Every invariant in docs/invariants.md is named in the file its row points to, so the doc
/// and the design notes cannot drift apart.
@Suite struct InvariantsTidyTests {
    /// `R1–R5` -> R1...R5, `F1–F5, U1–U6` -> F1...F5, U1...U6, `1–7` -> 1...7, `P13` -> P13.
    static func expand(_ cell: String) -> [String] {
        cell.replacingOccurrences(of: "`", with: "").split(separator: ",").flatMap { part -> [String] in
            let range = part.trimmingCharacters(in: .whitespaces).components(separatedBy: "–")
            guard range.count == 2 else { return [part.trimmingCharacters(in: .whitespaces)] }
            let prefix = range[0].prefix { !$0.isNumber }
            guard let low = Int(range[0].dropFirst(prefix.count)), let high = Int(range[1].dropFirst(prefix.count)), low <= high,
                  range[1].hasPrefix(prefix) else { return [part.trimmingCharacters(in: .whitespaces)] }
            return (low...high).map { "\(prefix)\($0)" }
        }
    }

    /// The Sources files a row points to: `Sources/...` paths and `Name.swift` names.
    static func files(in row: String, sources: [String]) -> [String] {
        var found: [String] = []
        for match in Tidy.matches(#"(Sources/[A-Za-z0-9_+./-]+\.swift)"#, in: row) where sources.contains(match[1]) { found.append(match[1]) }
        for match in Tidy.matches(#"(?<![/A-Za-z0-9_+])([A-Z][A-Za-z0-9_+]*\.swift)"#, in: row) {
            found += sources.filter { $0.hasSuffix("/" + match[1]) }
        }
        return found
    }

    /// Whether `text` names invariant `id`: as a word (`E4`, `RS2`), or a bare number as the
    /// start of a numbered line of the design notes (`// 3. ...`).
    static func names(_ text: String, _ id: String) -> Bool {
        let escaped = NSRegularExpression.escapedPattern(for: id)
        if id.allSatisfy(\.isNumber) {
            return !Tidy.matches(#"^//\s*"# + escaped + #"\.\s"#, in: Tidy.designNotes(text), options: .anchorsMatchLines).isEmpty
        }
        return !Tidy.matches(#"(?<![A-Za-z0-9-])"# + escaped + #"(?![A-Za-z0-9])"#, in: text).isEmpty
    }

    @Test func everyInvariantIsNamedInTheFileItsRowPointsTo() throws {
        let sources = try Repository.files(under: "Sources", suffixes: [".swift"])
        var checked = 0
        for line in try Repository.text("docs/invariants.md").split(separator: "\n") {
            let cells = Tidy.cells(line)
            guard cells.count >= 3, !cells[0].hasPrefix("---"), cells[0] != "#", cells[0] != "where" else { continue }
            // Two shapes: `| id | invariant | enforced by | tested by |` and `| \`file\` | ids | in short |`.
            let isWhere = cells[0].hasPrefix("`Sources/")
            let ids = Self.expand(isWhere ? cells[1] : cells[0])
            let files = isWhere ? [cells[0].replacingOccurrences(of: "`", with: "")] : Self.files(in: String(line), sources: sources)
            guard !files.isEmpty else {
                Issue.record("docs/invariants.md: the row of \(cells[0]) points to no file under Sources (name the one whose design notes state it)")
                continue
            }
            let texts = try files.map { try Repository.text($0) }
            for id in ids {
                checked += 1
                #expect(texts.contains { Self.names($0, id) }, "docs/invariants.md: \(id) is not named in \(files.joined(separator: ", ")), the file(s) its row points to")
            }
        }
        print("[InvariantsTidyTests] \(checked) invariants checked against their files")
        #expect(checked >= 80, "checked only \(checked) invariants: is the parser broken?")
    }
}
