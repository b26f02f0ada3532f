import AeroCore
@testable import AeroPolicy

/// A small facts document in the shape of issue 3 (candidate "b", primary "a").
enum SandboxFixtures {
    static let factsText = """
    { "schema": "aerodb.facts/1",
      "captured_at": "2026-11-26T10:00:00Z",
      "request": { "kind": "failover", "candidate": "b", "requested_by": "ops-oncall" },
      "cluster": { "name": "eu-prod", "epoch": 7, "primary": "a",
                   "commit_mode": "sync", "sync_replicas": ["b"], "labels": { "freeze": "no" } },
      "nodes": [
        { "id": "a", "role": "primary", "reachable": false, "epoch": null, "durable_lsn": null,
          "applied_lsn": null, "acked_lsn": null, "primary_acked_lsn": null, "wal": null,
          "recovering": null, "following": null, "last_contact_ms": null, "labels": { "zone": "eu-1a" } },
        { "id": "b", "role": "replica", "reachable": true, "epoch": 7, "durable_lsn": 1200,
          "applied_lsn": 1200, "acked_lsn": null, "primary_acked_lsn": 1198,
          "wal": { "continuous": true, "corrupt": false }, "recovering": false,
          "following": "a", "last_contact_ms": 4100, "labels": { "zone": "eu-1b" } },
        { "id": "c", "role": "replica", "reachable": true, "epoch": 7, "durable_lsn": 1190,
          "applied_lsn": 1190, "acked_lsn": null, "primary_acked_lsn": 1198, "ratio": 0.5,
          "wal": { "continuous": true, "corrupt": false }, "recovering": false,
          "following": "a", "last_contact_ms": 4000, "labels": { "zone": "eu-1c" } } ] }
    """

    static let facts: JSONValue = {
        do { return try JSONParser.parse(factsText) } catch { preconditionFailure("fixture: \(error)") }
    }()

    /// A document with `count` replica nodes besides the primary.
    static func facts(nodes count: Int) -> JSONValue {
        var nodes: [JSONValue] = [.object(["id": .string("n0"), "role": .string("primary"), "reachable": .bool(false),
                                           "labels": .object(["zone": .string("z0")])])]
        for index in 1...count {
            nodes.append(.object([
                "id": .string("n\(index)"), "role": .string("replica"), "reachable": .bool(true),
                "epoch": .integer(7), "durable_lsn": .integer(1200 - Int64(index)), "applied_lsn": .integer(1200),
                "primary_acked_lsn": .integer(1198), "following": .string("n0"), "last_contact_ms": .integer(4100),
                "recovering": .bool(false), "wal": .object(["continuous": .bool(true), "corrupt": .bool(false)]),
                "labels": .object(["zone": .string("z\(index % 3)")]),
            ]))
        }
        return .object([
            "schema": .string("aerodb.facts/1"),
            "request": .object(["kind": .string("failover"), "candidate": .string("n1"), "requested_by": .string("ops")]),
            "cluster": .object(["name": .string("bench"), "epoch": .integer(7), "primary": .string("n0"),
                                "commit_mode": .string("sync"), "sync_replicas": .array([.string("n1")])]),
            "nodes": .array(nodes),
        ])
    }

    /// The default budget with a wall clock so long that no test's outcome depends on the
    /// speed of the machine (sanitizers, loaded CI): instruction and memory budgets decide.
    /// theWallClockIsTheLastResort sets its own short clock.
    static let testBudget = LuaBudget(
        instructionsMax: PolicySandbox.defaultBudget.instructionsMax,
        memoryBytesMax: PolicySandbox.defaultBudget.memoryBytesMax,
        cpuTimeMsMax: 60_000,
        hookIntervalInstructions: PolicySandbox.defaultBudget.hookIntervalInstructions)

    static func policy(_ text: String, name: String = "p") -> PolicySource {
        PolicySource(name: name, path: "policies/\(name).lua", text: text)
    }

    static func run(_ text: String, facts: JSONValue = facts, budget: LuaBudget = testBudget) -> PolicyRun {
        PolicySandbox(budget: budget).run(policy(text), facts: facts)
    }

    static func outcome(_ text: String, facts: JSONValue = facts) -> PolicyOutcome {
        run(text, facts: facts).outcome
    }

    /// The failure kind and message, or nil if the outcome is not a failure.
    static func failure(_ text: String) -> (kind: PolicyFailureKind, message: String)? {
        if case .failed(let kind, let message) = outcome(text) { return (kind, message) }
        return nil
    }
}
