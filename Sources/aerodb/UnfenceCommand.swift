// UnfenceCommand.swift — `aerodb unfence --addr PRIMARY`: lift the fence of a primary that a
// switchover fenced and then did not complete (the candidate crashed or failed after the
// fence), over `POST /v1/admin/unfence`. Nothing lifts a fence by itself (no background
// retries); this is the operator's explicit way back to the old authority.
//
// Without --epoch the node's current epoch is read from its status first, and the request is
// for that epoch: the node refuses (PROMOTE-FENCE-1) if it is no longer the primary of it.
// The node asks the candidate it promised the next epoch to, and stays fenced
// (PROMOTE-UNFENCE-1) if that candidate is at a newer epoch, still runs a promotion, or does
// not answer, unless the operator asserts --candidate-lost (AdminService.swift, U1–U4).
// Exit codes as the other remote commands: 0 done (the node takes writes again), 1 refused
// (the rule and its message are printed), 2 no answer or an unusable request.
import AeroCore
import ArgumentParser
import Foundation

struct UnfenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unfence",
        abstract: "Lift the fence of the primary at --addr after a switchover that did not complete.",
        discussion: """
            A switchover fences the primary before the candidate takes over. If the candidate \
            crashed or failed after the fence, the old primary stays fenced (REPL-FENCED on \
            writes) until an operator lifts the fence or promotes again. The node first asks \
            the candidate it promised the next epoch to: if the candidate is primary of a newer \
            epoch, still runs a promotion, or does not answer, the fence stays \
            (PROMOTE-UNFENCE-1) — let the promotion end or restart the candidate and ask \
            again, or rejoin the old primary to the new one. \
            --candidate-lost asserts the candidate is gone for good and never became primary.

            Examples:
              aerodb unfence --addr 127.0.0.1:7001   # exit 1 unless n1 is a fenced primary
              aerodb unfence --addr 127.0.0.1:7001 --epoch 1 --candidate n2 \\
                  --format json   # exit 1 unless n1 is a fenced primary of epoch 1

            Exit codes: 0 the fence is lifted; 1 refused (PROMOTE-FENCE-1: not the primary of \
            that epoch; PROMOTE-UNFENCE-1: the candidate is at a newer epoch, still runs a \
            promotion, or does not answer); 2 no answer or unusable request.
            """)

    @OptionGroup var remote: RemoteOptions
    @Option(name: .long, help: "The epoch whose fence is lifted (default: the node's current epoch).") var epoch: UInt64?
    @Option(name: .long, help: "The candidate whose promise of the next epoch is withdrawn (default: the one the node promised it to).")
    var candidate: String?
    @Flag(name: .customLong("candidate-lost"), help: "Assert that the candidate is lost for good and never became primary (journaled); skips asking it.")
    var candidateLost = false
    @Option(name: .long, help: "Output format: text or json.") var format: PromoteFormat = .text

    func run() async throws {
        var target = epoch
        if target == nil {
            let status = try await remote.send("GET", "/v1/status")
            guard status.status == 200, let json = try? JSONParser.parse(String(decoding: status.body, as: UTF8.self)),
                  let current = json["node"]?["epoch"]?.integerValue, current >= 0 else {
                fail(2, "\(remote.addr) answered no status (\(status.status)); give --epoch")
            }
            target = UInt64(current)
        }
        var body: [String: JSONValue] = ["epoch": .integer(Int64(target!))]
        if let candidate { body["candidate"] = .string(candidate) }
        if candidateLost { body["candidate_lost"] = .bool(true) }
        let reply = try await remote.send("POST", "/v1/admin/unfence", body: Data(JSONValue.object(body).canonicalJSON.utf8))
        let text = String(decoding: reply.body, as: UTF8.self)
        guard let json = try? JSONParser.parse(text) else { fail(2, "\(remote.addr) answered \(reply.status): \(text)") }
        let code: Int32 = switch reply.status {
        case 200: 0
        case 409: 1
        default: 2
        }
        switch format {
        case .json:
            print(json.prettyJSON)
        case .text:
            print(Self.render(json, code: code), terminator: "")
        }
        if code != 0 { throw ExitCode(code) }
    }

    static func render(_ json: JSONValue, code: Int32) -> String {
        let node = json["node"]?.stringValue ?? "?"
        if code == 0 {
            let epoch = json["epoch"]?.integerValue.map(String.init) ?? "?"
            var out = json["was_fenced"]?.boolValue == false
                ? "\(node) was not fenced; it is primary of epoch \(epoch) and takes writes\n"
                : "\(node): fence of epoch \(epoch) lifted; it takes writes again\n"
            if let promise = json["released_promise"], promise != .null {
                out += "released its promise of epoch \(promise["epoch"]?.integerValue.map(String.init) ?? "?") to \(promise["candidate"]?.stringValue ?? "?")\n"
            }
            return out
        }
        let rule = json["rule"]?.stringValue ?? json["error"]?["code"]?.stringValue ?? "?"
        let message = json["message"]?.stringValue ?? json["error"]?["message"]?.stringValue ?? json.canonicalJSON
        return "refused: \(rule)\n\(message)\n"
    }

    private func fail(_ code: Int32, _ message: String) -> Never {
        FileHandle.standardError.write(Data("aerodb unfence: \(message)\n".utf8))
        Foundation.exit(code)
    }
}
