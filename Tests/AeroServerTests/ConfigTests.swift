import AeroCore
import AeroServer
import Foundation
import Testing

@Suite("Server configuration")
struct ConfigTests {
    static let cluster = """
        {
          "id": "n1",
          "data_dir": "data/n1",
          "http": "127.0.0.1:7001",
          "peer": "127.0.0.1:7101",
          "members": [
            { "id": "n1", "http": "127.0.0.1:7001", "peer": "127.0.0.1:7101", "labels": { "zone": "a" } },
            { "id": "n2", "http": "127.0.0.1:7002", "peer": "127.0.0.1:7102", "labels": { "zone": "b" } },
            { "id": "n3", "http": "127.0.0.1:7003", "peer": "127.0.0.1:7103" }
          ],
          "commit_mode": "sync",
          "sync_replicas": ["n2"],
          "policy_dir": "/etc/aerodb/policies",
          "initial_primary": "n1",
          "timeouts": { "sync_commit_timeout_ms": 2000, "min_lsn_wait_ms": 500 },
          "budgets": { "value_bytes_max": 4096 }
        }
        """

    static func parse(_ text: String) throws(ConfigError) -> ServerConfig {
        try ServerConfig.parse(text, source: "/cfg/n1.json", baseDirectory: "/cfg")
    }

    /// `cluster` with one top-level key replaced (or removed with nil).
    static func variant(_ key: String, _ value: String?) -> String {
        var object = try! JSONParser.parse(cluster).objectValue!
        if let value { object[key] = try! JSONParser.parse(value) } else { object[key] = nil }
        return JSONValue.object(object).canonicalJSON
    }

    static func expectError(_ text: String, key: String, contains fragment: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try parse(text)
            Issue.record("expected an error at \(key)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.source == "/cfg/n1.json", sourceLocation: sourceLocation)
            #expect(error.key == key, sourceLocation: sourceLocation)
            #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a full cluster file parses; relative paths resolve against the file's directory")
    func full() throws {
        let config = try Self.parse(Self.cluster)
        #expect(config.id == "n1")
        #expect(config.dataDir == "/cfg/data/n1")
        #expect(config.policyDir == "/etc/aerodb/policies")
        #expect(config.http == HostPort(host: "127.0.0.1", port: 7001))
        #expect(config.members.count == 3)
        #expect(config.members[0].labels == ["zone": "a"])
        #expect(config.members[2].labels == [:])
        #expect(config.commitMode == .sync && config.syncReplicas == ["n2"])
        #expect(config.timeouts.syncCommitTimeoutMs == 2000)
        #expect(config.timeouts.heartbeatIntervalMs == TimeoutsConfig().heartbeatIntervalMs, "unset keys keep defaults")
        #expect(config.budgets.valueBytesMax == 4096)
        #expect(config.selfMember?.peer == HostPort(host: "127.0.0.1", port: 7101))
    }

    @Test("a minimal file is a standalone node with async commits")
    func minimal() throws {
        let config = try Self.parse(#"{"id":"solo","data_dir":"/d","http":"127.0.0.1:0"}"#)
        #expect(config.members.isEmpty && config.commitMode == .async && config.peer == nil)
        #expect(config == ServerConfig.standalone(id: "solo", dataDir: "/d", http: HostPort(host: "127.0.0.1", port: 0)))
    }

    @Test("syntax errors, a non-object root and unknown keys name where")
    func structure() {
        Self.expectError("{\"id\": }", key: "(syntax)", contains: "line 1")
        Self.expectError("[]", key: "(root)", contains: "expected a JSON object")
        Self.expectError(Self.variant("sync_replica", "[]"), key: "sync_replica", contains: "unknown key")
        Self.expectError(Self.variant("timeouts", #"{"sync_commit_timeout":1}"#), key: "timeouts.sync_commit_timeout", contains: "unknown key")
        Self.expectError(Self.variant("members", #"[{"id":"n1","http":"127.0.0.1:7001","peer":"127.0.0.1:7101","zone":"a"}]"#),
                         key: "members[0].zone", contains: "unknown key")
        Self.expectError(#"{"id":"n1","id":"n2","data_dir":"/d","http":"h:1"}"#, key: "(syntax)", contains: "duplicate")
    }

    @Test("missing and mistyped fields name the key")
    func fields() {
        Self.expectError(Self.variant("id", nil), key: "id", contains: "is required")
        Self.expectError(Self.variant("data_dir", "7"), key: "data_dir", contains: "expected a non-empty string")
        Self.expectError(Self.variant("http", #""localhost""#), key: "http", contains: "expected host:port")
        Self.expectError(Self.variant("http", #""127.0.0.1:70000""#), key: "http", contains: "expected host:port")
        Self.expectError(Self.variant("commit_mode", #""quorum""#), key: "commit_mode", contains: "\"sync\" or \"async\"")
        Self.expectError(Self.variant("sync_replicas", #"["n2", 3]"#), key: "sync_replicas[1]", contains: "expected a member id")
        Self.expectError(Self.variant("timeouts", #"{"min_lsn_wait_ms": 1.5}"#), key: "timeouts.min_lsn_wait_ms", contains: "non-negative integer")
        Self.expectError(Self.variant("timeouts", #"{"min_lsn_wait_ms": -1}"#), key: "timeouts.min_lsn_wait_ms", contains: "non-negative integer")
        Self.expectError(Self.variant("budgets", #"{"txn_ops_max": 0}"#), key: "budgets.txn_ops_max", contains: "must be positive")
        Self.expectError(Self.variant("members", #"[{"id":"n1","http":"127.0.0.1:7001"}]"#), key: "members[0].peer", contains: "is required")
        Self.expectError(Self.variant("members", #"[{"id":"n1","http":"127.0.0.1:7001","peer":"127.0.0.1:7101","labels":{"zone":1}}]"#),
                         key: "members[0].labels.zone", contains: "expected a string")
    }

    @Test("cross-field rules: membership, sync replicas, addresses, timeouts")
    func crossField() throws {
        Self.expectError(Self.variant("id", #""n9""#), key: "id", contains: "not among the members")
        Self.expectError(Self.variant("http", #""127.0.0.1:9999""#), key: "http", contains: "differs from this node's member entry")
        Self.expectError(Self.variant("peer", nil), key: "peer", contains: "needs a peer address")
        Self.expectError(Self.variant("initial_primary", nil), key: "initial_primary", contains: "starts as primary")
        Self.expectError(Self.variant("initial_primary", #""n9""#), key: "initial_primary", contains: "not a member")
        // The cluster's sync replicas may name this node: every member shares one file's policy, and
        // a primary leaves itself out (ServerNode refuses to start a sync primary with none left).
        #expect(try Self.parse(Self.variant("sync_replicas", #"["n1","n2"]"#)).syncReplicas == ["n1", "n2"])
        Self.expectError(Self.variant("sync_replicas", #"["n7"]"#), key: "sync_replicas[0]", contains: "not a member")
        Self.expectError(Self.variant("sync_replicas", #"["n2","n2"]"#), key: "sync_replicas[1]", contains: "duplicate")
        Self.expectError(Self.variant("sync_replicas", "[]"), key: "sync_replicas", contains: "needs at least one")
        Self.expectError(Self.variant("commit_mode", #""async""#), key: "sync_replicas", contains: "only allowed")
        Self.expectError(Self.variant("timeouts", #"{"heartbeat_interval_ms": 5000}"#), key: "timeouts.heartbeat_interval_ms", contains: "below")
        let duplicate = Self.variant("members", """
            [{"id":"n1","http":"127.0.0.1:7001","peer":"127.0.0.1:7101"},{"id":"n1","http":"127.0.0.1:7002","peer":"127.0.0.1:7102"}]
            """)
        Self.expectError(duplicate, key: "members[1].id", contains: "duplicate")
    }

    @Test("flags override the file and the result is validated as a whole")
    func overrides() throws {
        let config = try Self.parse(Self.cluster)
        let moved = try config.applying(.init(dataDir: "/elsewhere", commitMode: "sync", syncReplicas: ["n3"]))
        #expect(moved.dataDir == "/elsewhere" && moved.syncReplicas == ["n3"])
        #expect(throws: ConfigError(source: "command line", key: "--http", message: "expected host:port, got \"nope\"")) {
            try config.applying(.init(http: "nope"))
        }
        #expect(throws: ConfigError.self) { try config.applying(.init(commitMode: "async")) }
        do {
            _ = try config.applying(.init(http: "127.0.0.1:8000"))
            Issue.record("a flag must not break the member entry")
        } catch {
            #expect(error.source == "command line" && error.key == "http")
        }
        let solo = try ServerConfig.standalone(dataDir: "/d", http: HostPort(host: "127.0.0.1", port: 1))
            .applying(.init(http: "127.0.0.1:2"))
        #expect(solo.http.port == 2)
    }

    @Test("load reads a file and reports unreadable ones by path")
    func load() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("n1.json")
        try Self.cluster.write(to: file, atomically: true, encoding: .utf8)
        let config = try ServerConfig.load(path: file.path)
        #expect(config.dataDir == dir.appendingPathComponent("data/n1").path)
        let missing = dir.appendingPathComponent("missing.json").path
        #expect { try ServerConfig.load(path: missing) } throws: { error in
            (error as? ConfigError)?.source == missing && (error as? ConfigError)?.key == "(file)"
        }
    }

    @Test("HostPort parsing")
    func hostPort() {
        #expect(HostPort(parsing: "127.0.0.1:0") == HostPort(host: "127.0.0.1", port: 0))
        #expect(HostPort(parsing: "db.local:65535")?.port == 65535)
        for bad in ["", ":1", "h:", "h:-1", "h:65536", "h:1x", "a b:1", "h"] {
            #expect(HostPort(parsing: bad) == nil, "\(bad)")
        }
    }
}
