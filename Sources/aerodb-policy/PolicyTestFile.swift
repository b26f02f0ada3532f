// PolicyTestFile.swift — the format of a policy unit-test file (docs/policy-guide.md,
// "Testing policies"), parsed strictly: an unknown key, a wrong type or a duplicate case
// name is an error naming the file and the field, so a typo never tests nothing.
//
//     {
//       "description": "optional text",
//       "facts": "../../examples/facts/failover-ok.json",   // fixture, relative to this file
//       "policies": ["../keep-a-replica.lua"],               // files or directories, relative
//       "cases": [
//         { "name": "refuses when the only other replica is unreachable",
//           "facts": "...", "policies": ["..."],              // optional, replace the defaults
//           "overrides": [ { "path": "$.nodes[2].reachable", "value": false },
//                          { "path": "$.request.requested_by", "remove": true } ],
//           "expect": "refuse",                               // "allow" or "refuse"
//           "source": "policy:keep-a-replica",                // refuse only: a reason from it
//           "reason": "healthy replica" }                     // refuse only: message substring
//       ]
//     }
import AeroCore
import Foundation

/// What a case expects of the decision.
struct PolicyTestExpectation: Equatable, Sendable, CustomStringConvertible {
    enum Decision: String, Sendable { case allow, refuse }
    let decision: Decision
    /// Refuse only: some reason must come from this source (`policy:NAME`, `rule:ID`).
    let source: String?
    /// Refuse only: some reason (from `source` when given) must contain this text.
    let reasonSubstring: String?

    var description: String {
        var text = decision.rawValue
        if let source { text += " from \(source)" }
        if let reasonSubstring { text += " with a reason containing \"\(reasonSubstring)\"" }
        return text
    }
}

/// One test case, with paths already resolved against the test file's directory.
struct PolicyTestCase: Sendable {
    let file: String
    let name: String
    let factsPath: String
    let policyPaths: [String]
    let overrides: [JSONOverride]
    let expectation: PolicyTestExpectation

    /// What `--filter` matches and what a result line shows: `file: name`.
    var identifier: String { "\(file): \(name)" }
}

/// A test file that cannot be used, naming the file and the field.
struct PolicyTestFileError: Error, CustomStringConvertible {
    let file: String
    let field: String?
    let message: String
    var description: String {
        if let field { return "\(file): \(field): \(message)" }
        return "\(file): \(message)"
    }
}

enum PolicyTestFile {
    /// Bounds: a test file is authored by hand; anything larger is a mistake.
    static let fileBytesMax = 4 << 20
    static let casesPerFileMax = 10_000
    static let overridesPerCaseMax = 1_000

    private static let fileKeys: Set<String> = ["description", "facts", "policies", "cases"]
    private static let caseKeys: Set<String> = ["name", "facts", "policies", "overrides", "expect", "source", "reason"]
    private static let overrideKeys: Set<String> = ["path", "value", "remove"]

    /// Parses the test file at `path` (as given on the command line, used in messages).
    static func load(path: String) throws(PolicyTestFileError) -> [PolicyTestCase] {
        let text: String
        do {
            text = try InputFiles.readText(path: path, bytesMax: fileBytesMax)
        } catch {
            throw PolicyTestFileError(file: path, field: nil, message: error.message)
        }
        let document: JSONValue
        do {
            document = try JSONParser.parse(text)
        } catch {
            throw PolicyTestFileError(file: path, field: nil, message: "not valid JSON: \(error)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try parse(document, file: path, directory: directory)
    }

    static func parse(_ document: JSONValue, file: String, directory: String) throws(PolicyTestFileError) -> [PolicyTestCase] {
        func fail(_ field: String?, _ message: String) -> PolicyTestFileError {
            PolicyTestFileError(file: file, field: field, message: message)
        }
        guard case .object(let top) = document else { throw fail(nil, "expected a JSON object at the top") }
        if let unknown = top.keys.sorted().first(where: { !fileKeys.contains($0) }) {
            throw fail(unknown, "unknown key (expected one of \(fileKeys.sorted().joined(separator: ", ")))")
        }
        if let description = top["description"] {
            guard case .string = description else { throw fail("description", "expected a string") }
        }
        let defaultFacts = try top["facts"].map { value throws(PolicyTestFileError) in
            try string(value, field: "facts", file: file)
        }
        let defaultPolicies = try top["policies"].map { value throws(PolicyTestFileError) in
            try strings(value, field: "policies", file: file)
        }
        guard case .array(let caseValues)? = top["cases"] else { throw fail("cases", "expected an array of test cases") }
        guard caseValues.count <= casesPerFileMax else { throw fail("cases", "more than \(casesPerFileMax) cases") }

        var names = Set<String>()
        var cases: [PolicyTestCase] = []
        for (position, caseValue) in caseValues.enumerated() {
            let field = "cases[\(position)]"
            guard case .object(let entry) = caseValue else { throw fail(field, "expected an object") }
            if let unknown = entry.keys.sorted().first(where: { !caseKeys.contains($0) }) {
                throw fail("\(field).\(unknown)", "unknown key (expected one of \(caseKeys.sorted().joined(separator: ", ")))")
            }
            guard let nameValue = entry["name"] else { throw fail("\(field).name", "missing") }
            let name = try string(nameValue, field: "\(field).name", file: file)
            guard names.insert(name).inserted else { throw fail("\(field).name", "duplicate case name \"\(name)\"") }

            let facts = try entry["facts"].map { value throws(PolicyTestFileError) in
                try string(value, field: "\(field).facts", file: file)
            } ?? defaultFacts
            guard let facts else { throw fail("\(field).facts", "no facts fixture: set \"facts\" in the case or at the top") }
            let policies = try entry["policies"].map { value throws(PolicyTestFileError) in
                try strings(value, field: "\(field).policies", file: file)
            } ?? defaultPolicies
            guard let policies else {
                throw fail("\(field).policies", "no policies: set \"policies\" in the case or at the top ([] for native rules only)")
            }

            let overrides = try parseOverrides(entry["overrides"], field: "\(field).overrides", file: file)
            let expectation = try parseExpectation(entry, field: field, file: file)
            cases.append(PolicyTestCase(
                file: file,
                name: name,
                factsPath: resolve(facts, against: directory),
                policyPaths: policies.map { resolve($0, against: directory) },
                overrides: overrides,
                expectation: expectation
            ))
        }
        return cases
    }

    private static func parseOverrides(_ value: JSONValue?, field: String, file: String) throws(PolicyTestFileError) -> [JSONOverride] {
        guard let value else { return [] }
        guard case .array(let entries) = value else {
            throw PolicyTestFileError(file: file, field: field, message: "expected an array of {\"path\", \"value\"} or {\"path\", \"remove\": true}")
        }
        guard entries.count <= overridesPerCaseMax else {
            throw PolicyTestFileError(file: file, field: field, message: "more than \(overridesPerCaseMax) overrides")
        }
        var overrides: [JSONOverride] = []
        for (position, entry) in entries.enumerated() {
            let entryField = "\(field)[\(position)]"
            guard case .object(let members) = entry else {
                throw PolicyTestFileError(file: file, field: entryField, message: "expected an object")
            }
            if let unknown = members.keys.sorted().first(where: { !overrideKeys.contains($0) }) {
                throw PolicyTestFileError(file: file, field: "\(entryField).\(unknown)", message: "unknown key (expected path, and value or remove)")
            }
            guard let pathValue = members["path"] else {
                throw PolicyTestFileError(file: file, field: "\(entryField).path", message: "missing")
            }
            let pathText = try string(pathValue, field: "\(entryField).path", file: file)
            let path: JSONPath
            do {
                path = try JSONPath(parsing: pathText)
            } catch {
                throw PolicyTestFileError(file: file, field: "\(entryField).path", message: error.description)
            }
            switch (members["value"], members["remove"]) {
            case (let value?, nil):
                overrides.append(JSONOverride(path: path, operation: .set(value)))
            case (nil, .bool(true)?):
                guard !path.steps.isEmpty else {
                    throw PolicyTestFileError(file: file, field: "\(entryField).path", message: "the whole document cannot be removed")
                }
                overrides.append(JSONOverride(path: path, operation: .remove))
            default:
                throw PolicyTestFileError(file: file, field: entryField, message: "give exactly one of \"value\" or \"remove\": true")
            }
        }
        return overrides
    }

    private static func parseExpectation(_ entry: [String: JSONValue], field: String, file: String) throws(PolicyTestFileError) -> PolicyTestExpectation {
        guard let expectValue = entry["expect"] else {
            throw PolicyTestFileError(file: file, field: "\(field).expect", message: "missing (\"allow\" or \"refuse\")")
        }
        let expectText = try string(expectValue, field: "\(field).expect", file: file)
        guard let decision = PolicyTestExpectation.Decision(rawValue: expectText) else {
            throw PolicyTestFileError(file: file, field: "\(field).expect", message: "expected \"allow\" or \"refuse\", found \"\(expectText)\"")
        }
        let source = try entry["source"].map { value throws(PolicyTestFileError) in
            try string(value, field: "\(field).source", file: file)
        }
        let reason = try entry["reason"].map { value throws(PolicyTestFileError) in
            try string(value, field: "\(field).reason", file: file)
        }
        if decision == .allow, source != nil || reason != nil {
            throw PolicyTestFileError(file: file, field: field, message: "\"source\" and \"reason\" only go with \"expect\": \"refuse\"")
        }
        if let source, !(source.hasPrefix("rule:") || source.hasPrefix("policy:")) {
            throw PolicyTestFileError(file: file, field: "\(field).source", message: "expected \"rule:ID\" or \"policy:NAME\", found \"\(source)\"")
        }
        return PolicyTestExpectation(decision: decision, source: source, reasonSubstring: reason)
    }

    private static func string(_ value: JSONValue, field: String, file: String) throws(PolicyTestFileError) -> String {
        guard case .string(let text) = value, !text.isEmpty else {
            throw PolicyTestFileError(file: file, field: field, message: "expected a non-empty string")
        }
        return text
    }

    private static func strings(_ value: JSONValue, field: String, file: String) throws(PolicyTestFileError) -> [String] {
        guard case .array(let elements) = value else {
            throw PolicyTestFileError(file: file, field: field, message: "expected an array of paths")
        }
        var result: [String] = []
        for (position, element) in elements.enumerated() {
            result.append(try string(element, field: "\(field)[\(position)]", file: file))
        }
        return result
    }

    /// `relative` against the test file's directory; absolute paths stay as they are.
    static func resolve(_ relative: String, against directory: String) -> String {
        if relative.hasPrefix("/") || directory.isEmpty { return relative }
        return (directory as NSString).appendingPathComponent(relative)
    }
}
