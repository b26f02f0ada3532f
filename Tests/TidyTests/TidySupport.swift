// TidySupport.swift — reading the repository for the tidy tests: Package.swift's targets, the
// imports of a target's sources, design notes, and markdown tables. Plain text parsing, no
// SwiftPM: the tests check what a reader of these files sees.
import AeroTestSupport
import Foundation

enum Tidy {
    /// All matches of `pattern` in `text`, each as its capture groups (group 0 first).
    static func matches(_ pattern: String, in text: String, options: NSRegularExpression.Options = []) -> [[String]] {
        let regex = try! NSRegularExpression(pattern: pattern, options: options)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
            (0..<match.numberOfRanges).map { i in Range(match.range(at: i), in: text).map { String(text[$0]) } ?? "" }
        }
    }

    /// One target of Package.swift.
    struct Target {
        var name: String
        /// `target`, `executableTarget`, `testTarget` or `systemLibrary`.
        var kind: String
        /// Targets of this package it depends on.
        var targets: [String]
        /// Products of other packages it depends on.
        var products: [String]
        var path: String

        /// The module name its sources import it by.
        var module: String { name.replacingOccurrences(of: "-", with: "_") }
        var isSwiftSource: Bool { (kind == "target" || kind == "executableTarget") && !path.hasPrefix("Sources/C") }
    }

    /// The text from `open` (an opening bracket at `start`) to its matching close, exclusive.
    static func bracketed(_ text: [Character], from start: Int, open: Character, close: Character) -> String {
        var depth = 0
        var end = start
        while end < text.count {
            if text[end] == open { depth += 1 }
            if text[end] == close {
                depth -= 1
                if depth == 0 { break }
            }
            end += 1
        }
        return String(text[(start + 1)..<end])
    }

    static func packageTargets() throws -> [Target] {
        let text = try Repository.text("Package.swift")
        let chars = Array(text)
        let regex = try NSRegularExpression(pattern: #"\.(target|executableTarget|testTarget|systemLibrary)\(\s*name:\s*"([^"]+)""#)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
            let kind = String(text[Range(match.range(at: 1), in: text)!])
            let name = String(text[Range(match.range(at: 2), in: text)!])
            let openParen = text.distance(from: text.startIndex, to: Range(match.range, in: text)!.lowerBound) + kind.count + 1
            let call = bracketed(chars, from: openParen, open: "(", close: ")")
            var targets: [String] = []
            var products: [String] = []
            if let deps = call.range(of: "dependencies:") , let bracket = call[deps.upperBound...].firstIndex(of: "[") {
                let callChars = Array(call)
                let list = bracketed(callChars, from: call.distance(from: call.startIndex, to: bracket), open: "[", close: "]")
                    .split(separator: "\n").map { $0.components(separatedBy: "//")[0] }.joined(separator: "\n")
                products = matches(#"\.product\(name:\s*"([^"]+)""#, in: list).map { $0[1] }
                let withoutProducts = list.replacingOccurrences(of: #"\.product\([^)]*\)"#, with: "", options: .regularExpression)
                targets = matches(#""([^"]+)""#, in: withoutProducts).map { $0[1] }
            }
            let path = matches(#"path:\s*"([^"]+)""#, in: call).first?[1]
                ?? (kind == "testTarget" ? "Tests/\(name)" : "Sources/\(name)")
            return Target(name: name, kind: kind, targets: targets, products: products, path: path)
        }
    }

    /// The modules `import`ed by the Swift files under `directory`.
    static func imports(under directory: String) throws -> Set<String> {
        var modules: Set<String> = []
        for path in try Repository.files(under: directory, suffixes: [".swift"]) {
            for match in matches(#"^\s*(?:@testable\s+|@_exported\s+)?import\s+(\w+)\s*$"#, in: try Repository.text(path), options: .anchorsMatchLines) {
                modules.insert(match[1])
            }
        }
        return modules
    }

    /// The header comment of a source file, its design notes: the leading `//` lines.
    static func designNotes(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { $0.hasPrefix("//") || $0.trimmingCharacters(in: .whitespaces).isEmpty }.joined(separator: "\n")
    }

    /// The spans written in `code` in `text`.
    static func codeSpans(_ text: String) -> [Substring] {
        text.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
    }

    /// The cells of a markdown table row (`| a | b |`), trimmed.
    static func cells(_ line: Substring) -> [String] {
        guard line.hasPrefix("|") else { return [] }
        let escaped = "\u{0}"  // an escaped `\|` inside a cell is not a separator
        return line.replacingOccurrences(of: "\\|", with: escaped).split(separator: "|", omittingEmptySubsequences: false)
            .dropFirst().dropLast()
            .map { $0.replacingOccurrences(of: escaped, with: "|").trimmingCharacters(in: .whitespaces) }
    }
}
