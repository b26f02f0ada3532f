// DecisionLog.swift — every promotion decision this node made, dry run or not, kept with the
// full facts document it was made from and its explanation, so that any of them can be read
// back (`GET /v1/admin/decisions/{id}`) and replayed offline with `aerodb-policy eval`.
//
// One file per decision, `decisions/<id>.json`, written durably (DurableFile) before the
// decision is answered; the event journal gets a `promotion_decision` line naming the id.
// Ids sort in the order decisions were made: `<node>-<captured unix ms, 13 digits>-<seq>`.
// At most `decisionsKeptMax` files are kept; the oldest are removed beyond that.

import AeroCore
import AeroPromotion
import Foundation

final class DecisionLog: @unchecked Sendable {
    static let directoryName = "decisions"
    static let decisionsKeptMax = 1_000
    /// `GET /v1/admin/decisions` lists at most this many, newest first.
    static let listedMax = 100

    let directory: String
    let node: NodeID
    private let lock = NSLock()
    private var sequence = 0

    init(dataDir: String, node: NodeID) throws {
        directory = dataDir + "/" + Self.directoryName
        self.node = node
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Writes one record durably and returns its id.
    func record(facts: FactsDocument, decision: Decision, dryRun: Bool, capturedMs: UInt64, extra: [String: JSONValue]) throws -> String {
        let basis = decision.digestBasis
        let id: String = lock.withLock {
            sequence += 1
            let ms = String(capturedMs)
            return "\(node.rawValue)-\(String(repeating: "0", count: max(0, 13 - ms.count)) + ms)-\(sequence)"
        }
        var fields: [String: JSONValue] = [
            "id": .string(id), "node": .string(node.rawValue), "dry_run": .bool(dryRun),
            "allowed": .bool(decision.allowed), "facts_digest": .string(DecisionDigest.digest(basis)),
            "digest_basis": basis, "document_digest": .string(decision.documentDigest),
            "facts": facts.json, "decision": decision.json, "explanation": .string(decision.explainText),
        ]
        for (key, value) in extra { fields[key] = value }
        let path = directory + "/" + id + ".json"
        try DurableFile.replace(path: path, temp: path + ".tmp", bytes: Array((JSONValue.object(fields).canonicalJSON + "\n").utf8),
                                directory: directory)
        prune()
        return id
    }

    /// What happened after the decision, in the record's `outcome` (issue 17: the history
    /// showed the engine's "allowed" for promotions that were refused by PROMOTE-DIGEST-1 or
    /// failed mid-way). `summary` is what `aerodb decisions list` prints.
    static func outcomeJSON(_ outcome: PromotionOutcome, dryRun: Bool, message: String) -> JSONValue {
        let summary: String
        var step: JSONValue = .null
        switch outcome {
        case .allowed: summary = dryRun ? "dry run: allowed" : "allowed"
        case .refused(let rule): summary = (dryRun ? "dry run: refused" : "refused") + (rule.map { " (\($0))" } ?? "")
        case .promoted: summary = "promoted"
        case .promotedWithoutService(let rule): summary = "promoted without service (\(rule))"
        case .failed(let failedStep, let rule):
            summary = "failed at \(failedStep.rawValue) (\(rule))"
            step = .string(failedStep.rawValue)
        case .unusable(let rule): summary = "unusable (\(rule))"
        }
        return .object([
            "outcome": .string(outcome.name), "rule": outcome.rule.map(JSONValue.string) ?? .null, "step": step,
            "summary": .string(summary), "message": .string(String(message.prefix(Self.outcomeMessageBytesMax))),
        ])
    }

    /// A recorded outcome's message is cut to this many characters (the journal has it whole).
    static let outcomeMessageBytesMax = 2_000

    /// Adds `outcome` to the record `id`, durably (the same replace path as the record). Returns
    /// the problem when it could not be written; the record then keeps its decision only.
    func recordOutcome(id: String, _ outcome: JSONValue) -> (any Error)? {
        guard case .object(var fields)? = read(id: id) else { return DecisionLogError.missing(id) }
        fields["outcome"] = outcome
        let path = directory + "/" + id + ".json"
        do {
            try DurableFile.replace(path: path, temp: path + ".tmp", bytes: Array((JSONValue.object(fields).canonicalJSON + "\n").utf8),
                                    directory: directory)
            return nil
        } catch {
            return error
        }
    }

    func read(id: String) -> JSONValue? {
        // Ids are file names this log made; anything else (a path, `..`) is simply not found.
        guard !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else { return nil }
        guard let data = FileManager.default.contents(atPath: directory + "/" + id + ".json") else { return nil }
        return try? JSONParser.parse(String(decoding: data, as: UTF8.self))
    }

    /// Newest first: id, dry run, allowed, kind, candidate, digest, reasons.
    func list() -> [JSONValue] {
        ids().suffix(Self.listedMax).reversed().compactMap { id in
            guard let record = read(id: id) else { return nil }
            let request = record["facts"]?["request"]
            let reasons = record["decision"]?["reasons"] ?? .array([])
            var entry: [String: JSONValue] = ["id": .string(id), "reasons": reasons]
            entry["dry_run"] = record["dry_run"] ?? .null
            entry["allowed"] = record["allowed"] ?? .null
            entry["kind"] = request?["kind"] ?? .null
            entry["candidate"] = request?["candidate"] ?? .null
            entry["captured_at"] = record["facts"]?["captured_at"] ?? .null
            entry["facts_digest"] = record["facts_digest"] ?? .null
            // Absent: the attempt did not end normally (the node stopped mid-way).
            entry["outcome"] = record["outcome"] ?? .null
            return .object(entry)
        }
    }

    /// The digest basis of the newest recorded decision (of the last `listedMax`) whose
    /// `facts_digest` is `digest`: what an operator approved, to name what changed since.
    func basis(forDigest digest: String) -> JSONValue? {
        for id in ids().suffix(Self.listedMax).reversed() {
            if let record = read(id: id), record["facts_digest"]?.stringValue == digest { return record["digest_basis"] }
        }
        return nil
    }

    private func ids() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    private func prune() {
        let all = ids()
        guard all.count > Self.decisionsKeptMax else { return }
        for id in all.prefix(all.count - Self.decisionsKeptMax) {
            try? FileManager.default.removeItem(atPath: directory + "/" + id + ".json")
        }
    }
}

enum DecisionLogError: Error, CustomStringConvertible {
    case missing(String)
    var description: String {
        switch self {
        case .missing(let id): "no decision record \(id)"
        }
    }
}
