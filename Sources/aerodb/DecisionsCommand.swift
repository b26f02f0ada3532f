// DecisionsCommand.swift — `aerodb decisions list|show ID --addr`: the promotion decisions a
// node recorded (`GET /v1/admin/decisions[/ID]`). `show --facts` prints only the facts
// document, ready for `aerodb-policy eval --facts - --policy <the node's policy_dir>`.
import AeroCore
import ArgumentParser
import Foundation

struct DecisionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decisions", abstract: "List or show the promotion decisions a node recorded.",
        subcommands: [DecisionsList.self, DecisionsShow.self])
}

struct DecisionsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Recorded decisions, newest first.")
    @OptionGroup var remote: RemoteOptions
    @Option(name: .long, help: "Output format: text or json.") var format: PromoteFormat = .text

    func run() async throws {
        let reply = try await remote.send("GET", "/v1/admin/decisions")
        try remote.check(reply)
        let json = try remote.json(reply)
        if format == .json {
            print(json.prettyJSON)
            return
        }
        let rows = (json["decisions"]?.arrayValue ?? []).map { entry -> [String] in
            let allowed = entry["allowed"]?.boolValue == true ? "allowed" : "refused"
            let dry = entry["dry_run"]?.boolValue == true ? " (dry run)" : ""
            let reasons = (entry["reasons"]?.arrayValue ?? []).compactMap { $0["source"]?.stringValue }
            // What happened, beside what the engine decided; none recorded: the attempt did not end
            // normally (the node stopped mid-way; its journal has `promotion_interrupted`).
            let outcome = entry["outcome"]?["summary"]?.stringValue ?? "unknown (interrupted)"
            return [entry["id"]?.stringValue ?? "?", entry["captured_at"]?.stringValue ?? "?", entry["kind"]?.stringValue ?? "?",
                    allowed + dry, outcome, reasons.joined(separator: ",")]
        }
        print(Self.table(header: ["ID", "CAPTURED AT", "KIND", "DECISION", "OUTCOME", "REASONS"], rows: rows), terminator: "")
    }

    /// Columns padded to their widest cell (Unicode scalars: ids and times are ASCII), two
    /// spaces apart; the last column is not padded.
    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].unicodeScalars.count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                column == row.count - 1 ? row[column] : row[column] + String(repeating: " ", count: widths[column] - row[column].unicodeScalars.count)
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
        }.joined()
    }
}

struct DecisionsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One decision: facts, decision and explanation.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The decision id (from `aerodb decisions list` or `aerodb promote`).") var id: String
    @Flag(name: .long, help: "Print only the facts document (canonical JSON), for aerodb-policy eval.") var facts = false
    @Flag(name: .long, help: "Print only the decision's full explanation.") var explain = false

    func validate() throws {
        if facts && explain {
            throw ValidationError("--facts and --explain each print one part of the record; give one of them (neither prints the whole record)")
        }
    }

    func run() async throws {
        let reply = try await remote.send("GET", "/v1/admin/decisions/\(encodedKey(id))")
        try remote.check(reply)
        let json = try remote.json(reply)
        if facts {
            print(json["facts"]?.canonicalJSON ?? "null")
        } else if explain {
            print(json["explanation"]?.stringValue ?? "", terminator: "")
        } else {
            print(json.prettyJSON)
        }
    }
}
