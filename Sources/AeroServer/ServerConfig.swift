// ServerConfig.swift — a node's configuration file (JSON), command-line overrides, validation.
//
// The file (docs/server.md has the reference and an example):
//
//     { "id": "n1", "data_dir": "data/n1", "http": "127.0.0.1:7001", "peer": "127.0.0.1:7101",
//       "members": [ { "id": "n1", "http": "127.0.0.1:7001", "peer": "127.0.0.1:7101",
//                      "labels": { "zone": "a" } }, ... ],
//       "commit_mode": "sync", "sync_replicas": ["n1", "n2", "n3"], "sync_quorum": 1,
//       "policy_dir": "policies",
//       "timeouts": { "sync_commit_timeout_ms": 5000, ... }, "budgets": { ... } }
//
// Rules
// 1. Parsed with AeroCore's strict JSONParser: duplicate keys and non-integers where integers are
//    required are errors. Unknown keys are errors too (a typo must not silently mean "default").
// 2. Every error names the file and the key path (`members[1].peer`), or the flag that set it.
// 3. Flags override the file; the merged result is validated as a whole, so a flag cannot
//    produce a configuration the file could not.
// 4. Relative paths in a file are relative to the file's directory; relative paths given as flags
//    are relative to the working directory.
// 5. Without a file (`aerodb serve --data-dir D --http H`) the node is a standalone primary: a
//    one-member cluster named after `id` (default "n1"), commit mode async.

import AeroCore

/// A configuration problem: where (file or "command line") and which key or flag.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public let source: String
    public let key: String
    public let message: String

    public init(source: String, key: String, message: String) {
        self.source = source
        self.key = key
        self.message = message
    }

    public var description: String { "\(source): \(key): \(message)" }
}

/// `host:port` of a listener. The host is kept as written (an IPv4 address or a name); the port
/// is 0...65535, where 0 asks the OS for an ephemeral port (tests).
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; nil when malformed.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }),
              let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

public struct MemberConfig: Hashable, Sendable {
    public var id: NodeID
    public var http: HostPort
    public var peer: HostPort
    public var labels: [String: String]

    public init(id: NodeID, http: HostPort, peer: HostPort, labels: [String: String] = [:]) {
        self.id = id
        self.http = http
        self.peer = peer
        self.labels = labels
    }
}

/// Bounded waits. Every wait in the server has one of these as its bound.
public struct TimeoutsConfig: Hashable, Sendable {
    /// A sync-mode write waits this long for its sync replicas, then fails (REPL-SYNC-TIMEOUT).
    public var syncCommitTimeoutMs: UInt64 = 5_000
    /// A replica read with `min_lsn` waits this long for the LSN, then refuses (REPL-STALE-READ).
    public var minLSNWaitMs: UInt64 = 1_000
    /// The primary sends a heartbeat to each replica at this interval.
    public var heartbeatIntervalMs: UInt64 = 100
    /// A replica gives up a connection attempt to its primary after this long.
    public var peerConnectTimeoutMs: UInt64 = 1_000
    /// A promotion candidate waits this long for each member's facts (issue 6).
    public var factsGatherTimeoutMs: UInt64 = 2_000
    /// After the primary role starts, or a replica session ends, a write whose quorum is not
    /// connected waits up to this long for it (a replica connecting or reconnecting) before it
    /// is refused with REPL-QUORUM-1; outside that window it is refused at once.
    public var quorumGraceMs: UInt64 = 1_000
    /// A switchover waits this long for the candidate to reach the fenced primary's final LSN.
    public var switchoverCatchUpTimeoutMs: UInt64 = 5_000
    /// Graceful shutdown lets in-flight commits finish for this long, then fails them.
    public var shutdownGraceMs: UInt64 = 5_000

    public init() {}

    static var keys: [(String, WritableKeyPath<TimeoutsConfig, UInt64>)] { [
        ("sync_commit_timeout_ms", \.syncCommitTimeoutMs),
        ("min_lsn_wait_ms", \.minLSNWaitMs),
        ("heartbeat_interval_ms", \.heartbeatIntervalMs),
        ("peer_connect_timeout_ms", \.peerConnectTimeoutMs),
        ("facts_gather_timeout_ms", \.factsGatherTimeoutMs),
        ("switchover_catch_up_timeout_ms", \.switchoverCatchUpTimeoutMs),
        ("quorum_grace_ms", \.quorumGraceMs),
        ("shutdown_grace_ms", \.shutdownGraceMs),
    ] }
}

/// Bounded resources.
public struct BudgetsConfig: Hashable, Sendable {
    /// Largest value accepted by `PUT /v1/kv/{key}`.
    public var valueBytesMax: UInt64 = 1 << 20
    /// Largest key.
    public var keyBytesMax: UInt64 = 1024
    /// Operations in one `POST /v1/txn`.
    public var txnOpsMax: UInt64 = 1_000
    /// Entries returned by one `GET /v1/kv?prefix=` (the response says when it was cut).
    public var listEntriesMax: UInt64 = 10_000
    /// Client writes waiting for their commit at once (CommitQuorum.waitersMax).
    public var commitWaitersMax: UInt64 = 65_536
    /// LSNs in flight to one replica (PrimaryReplicaSession.inFlightLSNMax).
    public var replicationInFlightLSNMax: UInt64 = 65_536
    /// One line of the event journal.
    public var journalLineBytesMax: UInt64 = 64 * 1024

    public init() {}

    static var keys: [(String, WritableKeyPath<BudgetsConfig, UInt64>)] { [
        ("value_bytes_max", \.valueBytesMax),
        ("key_bytes_max", \.keyBytesMax),
        ("txn_ops_max", \.txnOpsMax),
        ("list_entries_max", \.listEntriesMax),
        ("commit_waiters_max", \.commitWaitersMax),
        ("replication_in_flight_lsn_max", \.replicationInFlightLSNMax),
        ("journal_line_bytes_max", \.journalLineBytesMax),
    ] }
}

/// A validated node configuration.
public struct ServerConfig: Hashable, Sendable {
    public var id: NodeID
    public var dataDir: String
    public var http: HostPort
    public var peer: HostPort?
    public var members: [MemberConfig]
    public var commitMode: CommitMode
    /// The members that may acknowledge a write (an epoch's primary never counts itself).
    public var syncReplicas: [NodeID]
    /// How many of them must (ANY k); nil: all of the epoch's set. EpochDurability.swift.
    public var syncQuorum: Int? = nil
    public var policyDir: String?
    /// The member that starts as primary of epoch 1 when the cluster's data dirs are new. Read
    /// only when this node's data dir has no authority file yet; afterwards the authority file
    /// (epoch, role, history) decides, and only a promotion changes it.
    public var initialPrimary: NodeID?
    public var timeouts: TimeoutsConfig
    public var budgets: BudgetsConfig
    /// `cluster_name`: the facts' `cluster.name` (policies may key on it). Every member should
    /// carry the same; `local-cluster start --name` writes it into each node's file.
    public var clusterName: String = ServerConfig.clusterNameDefault
    /// `security`: TLS material, bearer tokens, plain serving (ServerConfig+Security.swift).
    public var security: SecurityConfig = SecurityConfig()

    public static let clusterNameDefault = "local"
    /// A cluster name is 1...64 bytes of [A-Za-z0-9._-]: it appears in facts, logs and file names.
    public static let clusterNameBytesMax = 64

    /// Why `name` is not a usable cluster name, or nil.
    public static func clusterNameProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= clusterNameBytesMax else {
            return "must be 1...\(clusterNameBytesMax) bytes, got \(name.utf8.count)"
        }
        guard name.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "._-".unicodeScalars.contains($0) }) else {
            return "may hold only letters, digits, '.', '_' and '-', got \"\(name.prefix(80))\""
        }
        return nil
    }

    /// This node's entry in `members`.
    public var selfMember: MemberConfig? { members.first { $0.id == id } }

    /// A standalone primary: one member, async commits, no peer listener.
    public static func standalone(id: NodeID = "n1", dataDir: String, http: HostPort) -> ServerConfig {
        ServerConfig(
            id: id, dataDir: dataDir, http: http, peer: nil, members: [], commitMode: .async,
            syncReplicas: [], policyDir: nil, initialPrimary: nil, timeouts: TimeoutsConfig(), budgets: BudgetsConfig())
    }

    /// Values given on the command line; each replaces the file's.
    public struct Overrides: Sendable, Equatable {
        public var id: NodeID?
        public var dataDir: String?
        public var http: String?
        public var peer: String?
        public var commitMode: String?
        public var syncReplicas: [String]?
        public var syncQuorum: Int?
        public var policyDir: String?

        public init(id: NodeID? = nil, dataDir: String? = nil, http: String? = nil, peer: String? = nil,
                    commitMode: String? = nil, syncReplicas: [String]? = nil, syncQuorum: Int? = nil, policyDir: String? = nil) {
            self.syncQuorum = syncQuorum
            self.id = id
            self.dataDir = dataDir
            self.http = http
            self.peer = peer
            self.commitMode = commitMode
            self.syncReplicas = syncReplicas
            self.policyDir = policyDir
        }
    }

    /// Applies flags and validates the result (rule 3).
    public func applying(_ flags: Overrides) throws(ConfigError) -> ServerConfig {
        let source = "command line"
        var merged = self
        if let id = flags.id {
            guard !id.rawValue.isEmpty else { throw ConfigError(source: source, key: "--id", message: "must not be empty") }
            merged.id = id
        }
        if let dataDir = flags.dataDir {
            guard !dataDir.isEmpty else { throw ConfigError(source: source, key: "--data-dir", message: "must not be empty") }
            merged.dataDir = dataDir
        }
        if let http = flags.http {
            guard let address = HostPort(parsing: http) else {
                throw ConfigError(source: source, key: "--http", message: "expected host:port, got \"\(http)\"")
            }
            merged.http = address
        }
        if let peer = flags.peer {
            guard let address = HostPort(parsing: peer) else {
                throw ConfigError(source: source, key: "--peer", message: "expected host:port, got \"\(peer)\"")
            }
            merged.peer = address
        }
        if let mode = flags.commitMode {
            guard let parsed = CommitMode(rawValue: mode) else {
                throw ConfigError(source: source, key: "--commit-mode", message: "expected sync or async, got \"\(mode)\"")
            }
            merged.commitMode = parsed
        }
        if let replicas = flags.syncReplicas { merged.syncReplicas = replicas.map { NodeID($0) } }
        if let quorum = flags.syncQuorum { merged.syncQuorum = quorum }
        if let policyDir = flags.policyDir { merged.policyDir = policyDir }
        try merged.validate(source: source)
        return merged
    }

    /// Cross-field rules, shared by files and flags.
    func validate(source: String) throws(ConfigError) {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(source: source, key: key, message: message) }
        if !members.isEmpty {
            var seen = Set<NodeID>()
            for (index, member) in members.enumerated() {
                guard seen.insert(member.id).inserted else { throw fail("members[\(index)].id", "duplicate member id \"\(member.id)\"") }
            }
            guard let me = selfMember else {
                throw fail("id", "\"\(id)\" is not among the members (\(members.map(\.id.rawValue).joined(separator: ", ")))")
            }
            if me.http != http { throw fail("http", "\(http) differs from this node's member entry \(me.http)") }
            if let peer, me.peer != peer { throw fail("peer", "\(peer) differs from this node's member entry \(me.peer)") }
            if members.count > 1 && peer == nil { throw fail("peer", "a cluster member needs a peer address") }
            if members.count > 1 && initialPrimary == nil {
                throw fail("initial_primary", "a cluster needs the member that starts as primary of epoch 1")
            }
            if let initialPrimary, !members.contains(where: { $0.id == initialPrimary }) {
                throw fail("initial_primary", "\"\(initialPrimary)\" is not a member")
            }
        }
        switch commitMode {
        case .async:
            if !syncReplicas.isEmpty { throw fail("sync_replicas", "only allowed with commit_mode \"sync\"") }
            if syncQuorum != nil { throw fail("sync_quorum", "only allowed with commit_mode \"sync\"") }
        case .sync:
            if syncReplicas.isEmpty { throw fail("sync_replicas", "commit_mode \"sync\" needs at least one sync replica") }
            var seen = Set<NodeID>()
            for (index, replica) in syncReplicas.enumerated() {
                let key = "sync_replicas[\(index)]"
                guard seen.insert(replica).inserted else { throw fail(key, "duplicate \"\(replica)\"") }
                guard members.contains(where: { $0.id == replica }) else { throw fail(key, "\"\(replica)\" is not a member") }
            }
            if let quorum = syncQuorum {
                guard quorum >= 1 else { throw fail("sync_quorum", "must be at least 1 (0 would acknowledge on the primary alone: that is commit_mode async)") }
                guard quorum <= syncReplicas.count else {
                    throw fail("sync_quorum", "\(quorum) is more than the \(syncReplicas.count) member(s) of sync_replicas")
                }
                // D1 for every member that may become primary: each must leave k others.
                for member in members.map(\.id) {
                    if case .failure(let problem) = EpochDurability.derive(eligible: syncReplicas, quorum: quorum, primary: member) {
                        throw fail("sync_quorum", "cannot be met: \(problem); list more members in sync_replicas or lower sync_quorum")
                    }
                }
            }
        }
        if timeouts.heartbeatIntervalMs == 0 { throw fail("timeouts.heartbeat_interval_ms", "must be positive") }
        if timeouts.heartbeatIntervalMs >= timeouts.syncCommitTimeoutMs {
            throw fail("timeouts.heartbeat_interval_ms", "must be below timeouts.sync_commit_timeout_ms (\(timeouts.syncCommitTimeoutMs))")
        }
        for (key, path) in BudgetsConfig.keys where budgets[keyPath: path] == 0 {
            throw fail("budgets.\(key)", "must be positive")
        }
    }
}
