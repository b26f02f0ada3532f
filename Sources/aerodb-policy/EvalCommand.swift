// EvalCommand.swift — `aerodb-policy eval`: one dry-run promotion decision from a facts
// document and the site policies, exactly as the live cluster would decide it.
import AeroCore
import AeroPolicy
import AeroPromotion
import ArgumentParser

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Decide a promotion offline (dry run) from a facts document and policies.",
        discussion: """
            The native safety rules always run; every --policy adds refusals, never an \
            allowance. Policy print output appears only in the explanation (--explain, or the \
            "policies" entries of --format json), never as lines of its own on stdout.

            Examples:
              aerodb-policy eval --facts examples/facts/failover-ok.json \\
                  --policy policies --explain
              aerodb-policy eval --facts examples/facts/switchover-ok.json \\
                  --policy policies/keep-a-replica.lua --format json
              ID=$(aerodb decisions list --addr 127.0.0.1:7002 | awk 'NR==2 {print $1}')
              aerodb decisions show "$ID" --facts --addr 127.0.0.1:7002 \\
                  | aerodb-policy eval --facts - --policy policies

            Exit codes: 0 promotion allowed; 1 refused (by a rule, a policy or a failing \
            policy); 2 unusable input (facts or policy file missing or malformed, bad flags).
            """
    )

    @Option(name: .long, help: ArgumentHelp("The facts document (JSON); '-' reads standard input.", valueName: "file"))
    var facts: String

    @Option(name: .long, help: ArgumentHelp(
        "A policy file, or a directory whose *.lua files are policies. Repeatable.", valueName: "file-or-dir"))
    var policy: [String] = []

    @Option(name: .long, help: "Output format: text for people, json for programs (one document).")
    var format: OutputFormat = .text

    @Flag(name: .long, help: "Text: also list every rule check, every policy run, digests and version.")
    var explain = false

    func run() throws {
        let (document, record) = try EvalInputs.factsOrRecord(path: facts)
        let sources = try EvalInputs.policies(paths: policy)
        let engine = PromotionEngine(policies: sources, sandbox: PolicySandbox(budget: PolicySet.budget, isolation: .worker))
        let decision = engine.decide(document)
        switch format {
        case .json:
            var json = decision.json
            if let record, case .object(var fields) = json {
                fields["recorded"] = record.json(now: decision)
                json = .object(fields)
            }
            print(json.prettyJSON)
        case .text:
            print(explain ? decision.explainText : decision.text, terminator: "")
            if let record { print(record.text(now: decision), terminator: "") }
        }
        if !decision.allowed { throw ExitCode(ExitStatus.refused) }
    }
}

/// A decision record given to `eval` (from `<data_dir>/decisions/` or `aerodb decisions show
/// ID`): eval decides from its facts and says what was recorded, decision and outcome.
struct RecordedDecision {
    let id: String?
    let allowed: Bool?
    let outcome: JSONValue?
    let factsDigest: String?

    init?(_ json: JSONValue) {
        guard json["facts"]?.objectValue != nil, json["decision"] != nil || json["allowed"] != nil else { return nil }
        id = json["id"]?.stringValue
        allowed = json["allowed"]?.boolValue
        outcome = json["outcome"]
        factsDigest = json["facts_digest"]?.stringValue
    }

    var outcomeSummary: String { outcome?["summary"]?.stringValue ?? "none recorded (the attempt did not end normally)" }

    func text(now: Decision) -> String {
        var out = "\nrecorded (decision \(id ?? "?")): \(allowed.map { $0 ? "allowed" : "refused" } ?? "?"), outcome: \(outcomeSummary)\n"
        let same = allowed == now.allowed && (factsDigest == nil || factsDigest == now.factsDigest)
        out += same ? "this run: the same decision (facts digest \(now.factsDigest))\n"
                    : "this run: a DIFFERENT decision (\(now.allowed ? "allowed" : "refused"), facts digest \(now.factsDigest); recorded \(factsDigest ?? "?"))\n"
        return out
    }

    func json(now: Decision) -> JSONValue {
        .object([
            "id": id.map(JSONValue.string) ?? .null, "allowed": allowed.map(JSONValue.bool) ?? .null,
            "outcome": outcome ?? .null, "facts_digest": factsDigest.map(JSONValue.string) ?? .null,
            "same_decision": .bool(allowed == now.allowed && (factsDigest == nil || factsDigest == now.factsDigest)),
        ])
    }
}

/// Reading eval's inputs; every failure is an `UnusableInput` naming the file and field.
enum EvalInputs {
    /// The facts document at `path`, or the `facts` of a decision record there with the record.
    static func factsOrRecord(path: String) throws(UnusableInput) -> (FactsDocument, RecordedDecision?) {
        let (name, text) = try read(path)
        if let json = try? JSONParser.parse(text), let record = RecordedDecision(json), let facts = json["facts"] {
            return (try parse(facts.canonicalJSON, name: "\(name) (a decision record's \"facts\")"), record)
        }
        return (try parse(text, name: name), nil)
    }

    static func facts(path: String) throws(UnusableInput) -> FactsDocument {
        let (name, text) = try read(path)
        return try parse(text, name: name)
    }

    /// The text at `path` (or standard input) with the name errors use for it.
    private static func read(_ path: String) throws(UnusableInput) -> (name: String, text: String) {
        do {
            return (path == InputFiles.standardInputName ? "standard input" : path,
                    try InputFiles.readText(path: path, bytesMax: InputFiles.factsBytesMax))
        } catch {
            throw UnusableInput(message: "facts: \(error.message)")
        }
    }

    private static func parse(_ text: String, name: String) throws(UnusableInput) -> FactsDocument {
        do {
            return try FactsDocument.parse(text)
        } catch {
            throw UnusableInput(message: "facts \(name): \(describe(error))")
        }
    }

    static func policies(paths: [String]) throws(UnusableInput) -> [PolicySource] {
        do {
            return try PolicySet.load(paths: paths)
        } catch {
            throw UnusableInput(message: "policy \(error.description)")
        }
    }

    /// A facts error as text: the JSON path and message, or the line and column of a syntax error.
    static func describe(_ error: FactsError) -> String {
        if let syntax = error.syntax { return "not valid JSON: \(syntax.description)" }
        return "\(error.path): \(error.message)"
    }
}
