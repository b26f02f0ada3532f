// ReplayCommand.swift — `aerodb-policy replay`: re-decides recorded promotion decisions from
// their recorded facts with the given policies, and reports every decision whose outcome or
// reasons would change. "Would my new policy have blocked a promotion we did, or allowed one
// we refused?"
import AeroCore
import AeroPolicy
import AeroPromotion
import ArgumentParser

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-decide recorded decisions with the given policies; report every change.",
        discussion: """
            Every --decisions PATH is a decision record as a node writes it \
            (<data_dir>/decisions/<id>.json, or the output of `aerodb decisions show ID`) or a \
            directory of them (*.json, not recursive, sorted). Each is re-decided from its \
            recorded facts by the native rules and the given policies, exactly as eval would, \
            and compared with what was recorded: allow -> refuse, refuse -> allow, reasons \
            added or gone. The last line is "N decisions, N changed".

            Examples:
              aerodb-policy replay --decisions examples/decisions --policy policies
              aerodb-policy replay --decisions examples/decisions/n2-1796317167432-1.json \\
                  --decisions examples/decisions/n3-1796317167576-1.json \\
                  --policy policies --format json

            Exit codes: 0 no decision changed; 1 some decision changed; 2 unusable input (a \
            record that cannot be read, naming the file and what is wrong; a policy; bad flags).
            """
    )

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp(
        "Decision record files or directories of them. Repeatable.", valueName: "path"))
    var decisions: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp(
        "The policies to decide with: files, or directories of *.lua. Repeatable; none: native rules only.",
        valueName: "file-or-dir"))
    var policy: [String] = []

    @Option(name: .long, help: "Output format: text for people, json for programs (one document).")
    var format: OutputFormat = .text

    func validate() throws {
        if decisions.isEmpty { throw ValidationError("give at least one --decisions PATH (a record or a directory of records)") }
    }

    func run() throws {
        let sources = try EvalInputs.policies(paths: policy)
        // Every record is read (and checked) before anything is decided: one unusable record
        // makes the whole replay unusable rather than a partial answer.
        let records = try DecisionRecords.files(decisions).map { file throws(UnusableInput) in try DecisionRecords.load(file) }
        let engine = PromotionEngine(policies: sources, sandbox: PolicySandbox(budget: PolicySet.budget))
        let replays = records.map { ReplayResult(record: $0, decision: engine.decide($0.facts)) }
        let changed = replays.filter(\.changed).count
        switch format {
        case .json:
            print(JSONValue.object([
                "decisions": .array(replays.map(\.json)),
                "total": .integer(Int64(replays.count)),
                "changed": .integer(Int64(changed)),
                "policy_set_digest": .string(engine.policySetDigest),
            ]).prettyJSON)
        case .text:
            for replay in replays where replay.changed { print(replay.text, terminator: "") }
            print("\(replays.count) decisions, \(changed) changed")
        }
        if changed > 0 { throw ExitCode(ExitStatus.refused) }
    }
}

/// One record re-decided, compared with what was recorded.
struct ReplayResult {
    let record: DecisionRecord
    let allowed: Bool
    /// Reasons the replay gives that the record lacks, and the other way round, in order.
    let added: [RecordedReason]
    let removed: [RecordedReason]

    init(record: DecisionRecord, decision: Decision) {
        self.record = record
        allowed = decision.allowed
        let now = decision.reasons.map { RecordedReason(source: $0.source, message: $0.message) }
        added = now.filter { !record.reasons.contains($0) }
        removed = record.reasons.filter { !now.contains($0) }
    }

    var changed: Bool { allowed != record.allowed || !added.isEmpty || !removed.isEmpty }

    /// The rules and policies whose reasons came or went, in order of first mention.
    var responsible: [String] {
        var sources: [String] = []
        for reason in added + removed where !sources.contains(reason.source) { sources.append(reason.source) }
        return sources
    }

    private static func word(_ allowed: Bool) -> String { allowed ? "allow" : "refuse" }

    var text: String {
        let outcome = allowed == record.allowed
            ? "\(Self.word(allowed)), reasons changed" : "\(Self.word(record.allowed)) -> \(Self.word(allowed))"
        var lines = ["CHANGED \(record.id): \(outcome)  (\(record.file))"]
        lines.append("  recorded outcome: \(record.outcome ?? "none recorded")")
        for reason in added { lines.append("  + \(reason)") }
        for reason in removed { lines.append("  - \(reason)") }
        lines.append("  responsible: \(responsible.joined(separator: ", "))")
        return lines.joined(separator: "\n") + "\n"
    }

    var json: JSONValue {
        func reasons(_ list: [RecordedReason]) -> JSONValue {
            .array(list.map { .object(["source": .string($0.source), "message": .string($0.message)]) })
        }
        return .object([
            "id": .string(record.id), "file": .string(record.file),
            "recorded": .string(Self.word(record.allowed)), "replayed": .string(Self.word(allowed)),
            "changed": .bool(changed), "added": reasons(added), "removed": reasons(removed),
            "recorded_outcome": record.outcome.map(JSONValue.string) ?? .null,
            "responsible": .array(responsible.map(JSONValue.string)),
        ])
    }
}
