// CoverageReport.swift — `aerodb-policy test --coverage`: line coverage of every policy file
// the cases ran, measured in the sandbox by the line hook (AeroPolicy's PolicyTooling). Only
// lines that hold code count (what the hook can report), so 100% is attainable.
//
// Text, one line per policy file, then the total:
//     keep-a-replica.lua  31/31 lines  100.0%
//     max-replication-lag.lua  20/22 lines  90.9%  uncovered: 31, 40
//     total  51/53 lines  96.2%
import AeroCore
import AeroPolicy
import Foundation

struct CoverageReport {
    struct File {
        let path: String
        let executableLines: [Int]
        let hits: [Int: Int]
        var covered: Int { hits.count }
        var uncovered: [Int] { executableLines.filter { hits[$0] == nil } }
    }

    let files: [File]

    /// Files merged by their absolute, standardized path (one file reached by two relative
    /// paths is one file).
    init(_ measured: [PolicyCoverageFile]) {
        var merged: [String: File] = [:]
        var order: [String] = []
        for file in measured {
            let path = URL(fileURLWithPath: file.path).standardizedFileURL.path
            if let existing = merged[path] {
                merged[path] = File(path: path, executableLines: existing.executableLines,
                                    hits: existing.hits.merging(file.hits, uniquingKeysWith: +))
            } else {
                merged[path] = File(path: path, executableLines: file.executableLines, hits: file.hits)
                order.append(path)
            }
        }
        files = order.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { merged[$0]! }
    }

    var covered: Int { files.reduce(0) { $0 + $1.covered } }
    var total: Int { files.reduce(0) { $0 + $1.executableLines.count } }

    /// Whether the total reaches `percent` (exactly: covered / total >= percent / 100).
    func reaches(_ percent: Double) -> Bool {
        total == 0 || Double(covered) * 100 >= percent * Double(total)
    }

    /// Rounded down to a tenth, so that 99.96% never reads as 100.0%.
    static func percent(_ covered: Int, _ total: Int) -> String {
        guard total > 0 else { return "100.0%" }
        let tenths = covered * 1000 / total
        return "\(tenths / 10).\(tenths % 10)%"
    }

    var text: String {
        var lines: [String] = []
        for file in files {
            // A file without lines that hold code is one that does not compile (its cases fail).
            var line = "\((file.path as NSString).lastPathComponent)  \(file.covered)/\(file.executableLines.count) lines  "
                + (file.executableLines.isEmpty ? "no code (does not compile)" : Self.percent(file.covered, file.executableLines.count))
            if !file.uncovered.isEmpty { line += "  uncovered: " + file.uncovered.map(String.init).joined(separator: ", ") }
            lines.append(line)
        }
        lines.append("total  \(covered)/\(total) lines  \(Self.percent(covered, total))")
        return lines.joined(separator: "\n") + "\n"
    }

    /// LCOV tracefile (geninfo(1) format): SF, DA per executable line, LF, LH, end_of_record.
    var lcov: String {
        var text = "TN:aerodb-policy\n"
        for file in files {
            text += "SF:\(file.path)\n"
            for line in file.executableLines { text += "DA:\(line),\(file.hits[line] ?? 0)\n" }
            text += "LF:\(file.executableLines.count)\nLH:\(file.covered)\nend_of_record\n"
        }
        return text
    }

    var json: JSONValue {
        .object([
            "files": .array(files.map { file in
                .object([
                    "path": .string(file.path), "covered": .integer(Int64(file.covered)),
                    "total": .integer(Int64(file.executableLines.count)),
                    "uncovered": .array(file.uncovered.map { .integer(Int64($0)) }),
                ])
            }),
            "covered": .integer(Int64(covered)), "total": .integer(Int64(total)),
        ])
    }
}
