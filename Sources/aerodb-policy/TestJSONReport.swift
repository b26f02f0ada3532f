// TestJSONReport.swift — `aerodb-policy test --format json`: the results as one document.
//
//     {"cases": [{"file", "name", "passed", "expected", "decision": "allow|refuse|unusable",
//                 "reasons": [{"source", "message"}], "failure": "details" | null,
//                 "facts_read": [{"source", "truncated", "values": [{"path", "value"}]}]}],
//      "passed": N, "failed": N, "coverage": {...} (with --coverage)}
import AeroCore

enum TestJSONReport {
    static func json(results: [PolicyTestResult], coverage: CoverageReport?) -> JSONValue {
        let failed = results.filter { $0.failure != nil }.count
        var document: [String: JSONValue] = [
            "cases": .array(results.map(caseJSON)),
            "passed": .integer(Int64(results.count - failed)),
            "failed": .integer(Int64(failed)),
        ]
        if let coverage { document["coverage"] = coverage.json }
        return .object(document)
    }

    private static func caseJSON(_ result: PolicyTestResult) -> JSONValue {
        let decision: JSONValue = result.decision.map { .string($0.allowed ? "allow" : "refuse") } ?? .string("unusable")
        return .object([
            "file": .string(result.testCase.file),
            "name": .string(result.testCase.name),
            "passed": .bool(result.failure == nil),
            "expected": .string(result.testCase.expectation.description),
            "decision": decision,
            "reasons": .array((result.decision?.reasons ?? []).map {
                .object(["source": .string($0.source), "message": .string($0.message)])
            }),
            "failure": result.failure.map { .string($0.details) } ?? .null,
            "facts_read": .array(result.factsRead.map { read in
                .object([
                    "source": .string(read.source), "truncated": .bool(read.truncated),
                    "values": .array(read.values.map { .object(["path": .string($0.path), "value": .string($0.value)]) }),
                ])
            }),
        ])
    }
}
