// DecisionRecord.swift — a promotion decision as a node records it: the file
// `<data_dir>/decisions/<id>.json` (canonical JSON, AeroServer's DecisionLog) or the output of
// `aerodb decisions show ID` (the same object, pretty-printed). What replay needs of it:
// the facts the node decided from, and the outcome and reasons it recorded.
//
//     {"id": "...", "allowed": true, "facts": {facts document},
//      "decision": {"decision": "allow|refuse", "reasons": [{"source": "...", "message": "..."}], ...}, ...}
import AeroCore
import Foundation

struct DecisionRecord: Sendable {
    let file: String
    let id: String
    let facts: FactsDocument
    let allowed: Bool
    let reasons: [RecordedReason]
    /// What happened after the decision (`outcome.summary` of the record), nil when none was
    /// recorded (an older record, or an attempt that did not end normally).
    var outcome: String? = nil
}

/// A reason as recorded (and as re-decided): `source: message`.
struct RecordedReason: Hashable, Sendable, CustomStringConvertible {
    let source: String
    let message: String
    var description: String { "\(source): \(message)" }
}

enum DecisionRecords {
    /// Largest record accepted (the facts document is most of it).
    static let recordBytesMax = InputFiles.factsBytesMax
    /// Most records one replay reads (a node keeps 1,000: DecisionLog.decisionsKeptMax).
    static let recordsMax = 100_000

    /// The record files named by `paths`: files as given, directories' *.json (not
    /// recursive, sorted by name, so in the order a node made them).
    static func files(_ paths: [String]) throws(UnusableInput) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw UnusableInput(message: "--decisions \(path): no such file or directory")
            }
            if !isDirectory.boolValue {
                files.append(path)
            } else {
                let names: [String]
                do {
                    names = try FileManager.default.contentsOfDirectory(atPath: path)
                } catch {
                    throw UnusableInput(message: "--decisions \(path): cannot read the directory")
                }
                let base = path.hasSuffix("/") ? path : path + "/"
                files += names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
                    .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                    .map { base + $0 }
            }
            guard files.count <= recordsMax else {
                throw UnusableInput(message: "--decisions: more than \(recordsMax) decision records")
            }
        }
        return files
    }

    /// Reads one record; every problem names the file and the field.
    static func load(_ file: String) throws(UnusableInput) -> DecisionRecord {
        func fail(_ message: String) -> UnusableInput { UnusableInput(message: "decision record \(file): \(message)") }
        let text: String
        do {
            text = try InputFiles.readText(path: file, bytesMax: recordBytesMax)
        } catch {
            throw UnusableInput(message: "decision record \(error.message)")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch {
            throw fail("not valid JSON: \(error.description)")
        }
        guard case .object(let top) = json else { throw fail("expected a JSON object (a decision record) at the top") }
        guard let factsJSON = top["facts"] else {
            throw fail("facts: missing (a record from <data_dir>/decisions/ or `aerodb decisions show ID`, not `--facts` output)")
        }
        let facts: FactsDocument
        do {
            facts = try FactsDocument(json: factsJSON)
        } catch {
            throw fail("facts: \(EvalInputs.describe(error))")
        }
        guard case .object(let decision)? = top["decision"] else { throw fail("decision: missing or not an object") }
        let allowed: Bool
        switch decision["decision"] {
        case .string("allow")?: allowed = true
        case .string("refuse")?: allowed = false
        default: throw fail("decision.decision: expected \"allow\" or \"refuse\"")
        }
        if let recorded = top["allowed"], recorded != .bool(allowed) {
            throw fail("allowed: \(recorded.canonicalJSON) contradicts decision.decision \"\(allowed ? "allow" : "refuse")\"")
        }
        guard case .array(let reasonValues)? = decision["reasons"] else { throw fail("decision.reasons: missing or not an array") }
        var reasons: [RecordedReason] = []
        for (position, value) in reasonValues.enumerated() {
            guard case .string(let source)? = value["source"], case .string(let message)? = value["message"] else {
                throw fail("decision.reasons[\(position)]: expected {\"source\": string, \"message\": string}")
            }
            reasons.append(RecordedReason(source: source, message: message))
        }
        if allowed != reasons.isEmpty {
            throw fail("decision.reasons: \(reasons.count) reason(s) for a decision to \(allowed ? "allow" : "refuse")")
        }
        let id: String
        switch top["id"] {
        case .string(let text)?: id = text
        case nil: id = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        default: throw fail("id: expected a string")
        }
        var record = DecisionRecord(file: file, id: id, facts: facts, allowed: allowed, reasons: reasons)
        record.outcome = top["outcome"]?["summary"]?.stringValue
        return record
    }
}
