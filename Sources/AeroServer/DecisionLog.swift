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
        let basis = DecisionDigest.basis(facts, decision)
        let id: String = lock.withLock {
            sequence += 1
            let ms = String(capturedMs)
            return "\(node.rawValue)-\(String(repeating: "0", count: max(0, 13 - ms.count)) + ms)-\(sequence)"
        }
        var fields: [String: JSONValue] = [
            "id": .string(id), "node": .string(node.rawValue), "dry_run": .bool(dryRun),
            "allowed": .bool(decision.allowed), "facts_digest": .string(DecisionDigest.digest(basis)),
            "digest_basis": basis, "document_digest": .string(facts.digest),
            "facts": facts.json, "decision": decision.json, "explanation": .string(decision.explainText),
        ]
        for (key, value) in extra { fields[key] = value }
        let path = directory + "/" + id + ".json"
        try DurableFile.replace(path: path, temp: path + ".tmp", bytes: Array((JSONValue.object(fields).canonicalJSON + "\n").utf8),
                                directory: directory)
        prune()
        return id
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
            return .object([
                "id": .string(id), "dry_run": record["dry_run"] ?? .null, "allowed": record["allowed"] ?? .null,
                "kind": request?["kind"] ?? .null, "candidate": request?["candidate"] ?? .null,
                "captured_at": record["facts"]?["captured_at"] ?? .null,
                "facts_digest": record["facts_digest"] ?? .null, "reasons": reasons,
            ])
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
