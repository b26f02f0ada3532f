// PromoteCommand.swift — `aerodb promote`: ask a candidate to promote itself, over
// `POST /v1/admin/promote`. Exit codes as `aerodb-policy eval`: 0 allowed (dry run) or
// promoted; 1 refused (by a rule, a policy, a PROMOTE-* rule) or the attempt failed; 2 no
// answer or an unusable request.
import AeroCore
import ArgumentParser
import Foundation

enum PromoteFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

enum PromoteKind: String, ExpressibleByArgument, CaseIterable {
    case failover, switchover
}

struct PromoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Promote the replica at --addr (the candidate): switchover or failover.",
        discussion: """
            The candidate captures facts from every member, decides with the native rules and \
            its policy_dir, records the decision, and (unless --dry-run) promotes itself: \
            switchover fences the primary first; failover requires the primary unreachable.

            Examples:
              aerodb promote --addr 127.0.0.1:7002 --kind switchover --dry-run \\
                  --requested-by alice
              D=$(aerodb promote --addr 127.0.0.1:7002 --kind switchover --dry-run \\
                  --requested-by alice --format json \\
                  | sed -n 's/^  "facts_digest": "\\([0-9a-f]*\\)".*/\\1/p')
              aerodb promote --addr 127.0.0.1:7002 --kind switchover \\
                  --requested-by alice --expect-facts-digest "$D"
              aerodb promote --addr 127.0.0.1:7003 --kind failover \\
                  --requested-by alice --explain   # exit 1 while the primary lives

            Exit codes: 0 allowed (dry run) or promoted; 1 refused or failed; 2 no answer or \
            unusable request.
            """)

    @OptionGroup var remote: RemoteOptions
    @Option(name: .long, help: "failover (the primary is gone) or switchover (planned; the primary is fenced first).") var kind: PromoteKind
    @Flag(name: .customLong("dry-run"), help: "Decide and record the decision, change nothing.") var dryRun = false
    @Flag(name: .long, help: "Text: print the full explanation (every rule, every policy, digests).") var explain = false
    @Option(name: .long, help: "Output format: text or json.") var format: PromoteFormat = .text
    @Option(name: .customLong("expect-facts-digest"), help: "Refuse (PROMOTE-DIGEST-1) unless the facts captured now have this digest.")
    var expectFactsDigest: String?
    @Option(name: .customLong("requested-by"), help: "Who asks (recorded in the facts; policies may require it).")
    var requestedBy: String?

    /// A facts digest is SHA-256 in lowercase hex: 64 characters.
    static let digestHexLength = 64

    func validate() throws {
        if let digest = expectFactsDigest,
           digest.count != Self.digestHexLength || !digest.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) {
            throw ValidationError("--expect-facts-digest \"\(digest.prefix(80))\": expected the 64 lowercase hex characters of the dry run's \"facts digest\" (\(digest.count) given)")
        }
    }

    func run() async throws {
        var body: [String: JSONValue] = ["kind": .string(kind.rawValue), "dry_run": .bool(dryRun)]
        if let expectFactsDigest { body["expect_facts_digest"] = .string(expectFactsDigest) }
        if let requestedBy { body["requested_by"] = .string(requestedBy) }
        let candidate = remote.addr, kind = kind, dryRun = dryRun
        let reply = try await remote.send("POST", "/v1/admin/promote", body: Data(JSONValue.object(body).canonicalJSON.utf8)) { error in
            // A request that may have reached the candidate leaves the cluster anywhere between
            // "nothing happened" and "promoted": say which states are possible and what to run.
            // One that never connected changed nothing, and the transport error says so.
            guard !dryRun, !RemoteOptions.neverSent(error) else { return }
            FileHandle.standardError.write(Data(Self.unknownOutcomeAdvice(candidate: candidate, kind: kind).utf8))
        }
        let text = String(decoding: reply.body, as: UTF8.self)
        guard let json = try? JSONParser.parse(text), let exitCode = json["exit_code"]?.integerValue else {
            FileHandle.standardError.write(Data("aerodb: \(remote.addr) answered \(reply.status): \(text)\n".utf8))
            throw ExitCode(2)
        }
        switch format {
        case .json:
            print(json.prettyJSON)
        case .text:
            print(Self.render(json, explain: explain), terminator: "")
        }
        if exitCode != 0 { throw ExitCode(Int32(exitCode)) }
    }

    /// What an operator should do when the candidate stopped answering mid-promotion.
    static func unknownOutcomeAdvice(candidate: String, kind: PromoteKind) -> String {
        var text = "aerodb: the outcome of the \(kind.rawValue) is unknown: the candidate \(candidate) did not answer.\n"
        text += "  The candidate may not have started, may hold epoch promises, or may have begun the new epoch.\n"
        if kind == .switchover {
            text += "  The old primary may be fenced: it then refuses writes with REPL-FENCED.\n"
        }
        text += "  Next: `aerodb status --addr \(candidate)` (its epoch and role, once it answers) and `aerodb status` on the old primary;\n"
        if kind == .switchover {
            text += "  if the old primary is fenced and the candidate did not begin the new epoch: `aerodb unfence --addr OLD-PRIMARY`.\n"
        } else {
            text += "  then `aerodb decisions list --addr \(candidate)` shows whether the decision was recorded.\n"
        }
        return text
    }

    /// The text form: outcome line, the decision (or its full explanation), then the attempt.
    static func render(_ json: JSONValue, explain: Bool) -> String {
        var out = ""
        let outcome = json["outcome"]?.stringValue ?? "?"
        let node = json["node"]?.stringValue ?? "?"
        out += "outcome: \(outcome) (candidate \(node))\n"
        if let rule = json["rule"]?.stringValue { out += "rule: \(rule)\n" }
        if let id = json["decision_id"]?.stringValue { out += "decision: \(id)\n" }
        if let digest = json["facts_digest"]?.stringValue { out += "facts digest: \(digest)\n" }
        if let decision = (explain ? json["explanation"] : json["text"])?.stringValue {
            out += "\n" + decision
            if !decision.hasSuffix("\n") { out += "\n" }
        }
        if outcome == "promoted" || outcome == "failed" || json["rule"] != nil {
            out += "\n" + (json["message"]?.stringValue ?? "") + "\n"
        }
        for key in ["repointed", "unreachable"] {
            if let list = json[key]?.arrayValue {
                out += "\(key): \(list.isEmpty ? "none" : list.compactMap(\.stringValue).joined(separator: ", "))\n"
            }
        }
        if let refused = json["repoint_refused"]?.arrayValue, !refused.isEmpty {
            for entry in refused {
                out += "repoint refused by \(entry["node"]?.stringValue ?? "?"): \(entry["message"]?.stringValue ?? "")\n"
            }
        }
        return out
    }
}

/// `aerodb rejoin --addr NODE --primary-addr PRIMARY`: point a node that missed the re-pointing
/// (an old primary that comes back, a replica that was unreachable) at the current primary.
/// The node checks that its WAL is a prefix of the primary's epoch history; a diverged node is
/// refused (PROMOTE-DIVERGED-1) and needs `aerodb reseed`. Exit 0 following, 1 refused, 2 no answer.
struct RejoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejoin", abstract: "Make the node at --addr follow the primary at --primary-addr, if its WAL allows it.")

    @OptionGroup var remote: RemoteOptions
    @Option(name: .customLong("primary-addr"), help: "The current primary's HTTP address, host:port.") var primaryAddr: String

    func validate() throws {
        if case .failure(let error) = NodeAddress.parse(primaryAddr, flag: "--primary-addr") { throw ValidationError(error.message) }
    }

    func run() async throws {
        var primaryRemote = remote
        primaryRemote.addr = primaryAddr
        let status = try await primaryRemote.send("GET", "/v1/status")
        try primaryRemote.check(status)
        guard let json = try? JSONParser.parse(String(decoding: status.body, as: UTF8.self)),
              json["node"]?["role"]?.stringValue == "primary", let id = json["node"]?["id"]?.stringValue,
              let epoch = json["node"]?["epoch"], let history = json["epoch_history"] else {
            FileHandle.standardError.write(Data("aerodb: \(primaryAddr) is not a primary (or answered no status)\n".utf8))
            throw ExitCode(1)
        }
        let body = JSONValue.object(["primary": .string(id), "epoch": epoch, "history": history])
        let reply = try await remote.send("POST", "/v1/admin/follow", body: Data(body.canonicalJSON.utf8))
        try remote.check(reply)
        FileHandle.standardOutput.write(reply.body)
    }
}
