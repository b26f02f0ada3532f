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
        guard let json = try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self)) else {
            FileHandle.standardError.write(Data("aerodb: \(remote.addr) answered something that is not JSON\n".utf8))
            throw ExitCode(2)
        }
        if format == .json {
            print(json.prettyJSON)
            return
        }
        for entry in json["decisions"]?.arrayValue ?? [] {
            let allowed = entry["allowed"]?.boolValue == true ? "allowed" : "refused"
            let dry = entry["dry_run"]?.boolValue == true ? " (dry run)" : ""
            let reasons = (entry["reasons"]?.arrayValue ?? []).compactMap { $0["source"]?.stringValue }
            print("\(entry["id"]?.stringValue ?? "?")  \(entry["captured_at"]?.stringValue ?? "?")  \(entry["kind"]?.stringValue ?? "?")  \(allowed)\(dry)\(reasons.isEmpty ? "" : "  " + reasons.joined(separator: ","))")
        }
    }
}

struct DecisionsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One decision: facts, decision and explanation.")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "The decision id (from `aerodb decisions list` or `aerodb promote`).") var id: String
    @Flag(name: .long, help: "Print only the facts document (canonical JSON), for aerodb-policy eval.") var facts = false
    @Flag(name: .long, help: "Print only the decision's full explanation.") var explain = false

    func run() async throws {
        let reply = try await remote.send("GET", "/v1/admin/decisions/\(encodedKey(id))")
        try remote.check(reply)
        guard let json = try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self)) else {
            FileHandle.standardError.write(Data("aerodb: \(remote.addr) answered something that is not JSON\n".utf8))
            throw ExitCode(2)
        }
        if facts {
            print(json["facts"]?.canonicalJSON ?? "null")
        } else if explain {
            print(json["explanation"]?.stringValue ?? "", terminator: "")
        } else {
            print(json.prettyJSON)
        }
    }
}
