// ServerConfigFile.swift — reading ServerConfig from JSON text (rules in ServerConfig.swift).

import AeroCore
import Foundation

extension ServerConfig {
    /// Largest configuration file read; a bigger one is refused (it is surely not a config).
    public static let fileBytesMax = 1 << 20

    static let topLevelKeys: Set<String> = [
        "id", "data_dir", "http", "peer", "members", "commit_mode", "sync_replicas", "sync_quorum", "policy_dir", "initial_primary", "cluster_name",
        "timeouts", "budgets",
    ]
    static let memberKeys: Set<String> = ["id", "http", "peer", "labels"]

    /// Reads and validates the file at `path`.
    public static func load(path: String) throws(ConfigError) -> ServerConfig {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ConfigError(source: path, key: "(file)", message: "cannot be read: \(error.localizedDescription)")
        }
        guard data.count <= fileBytesMax else {
            throw ConfigError(source: path, key: "(file)", message: "\(data.count) bytes exceed the limit of \(fileBytesMax)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(source: path, key: "(file)", message: "is not UTF-8 text")
        }
        return try parse(text, source: path, baseDirectory: url.deletingLastPathComponent().path)
    }

    /// Parses configuration text. `source` names it in errors; relative paths are resolved
    /// against `baseDirectory` (rule 4).
    public static func parse(_ text: String, source: String, baseDirectory: String) throws(ConfigError) -> ServerConfig {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(source: source, key: key, message: message) }
        let root: JSONValue
        do {
            root = try JSONParser.parse(text)
        } catch {
            throw fail("(syntax)", error.description)
        }
        guard let object = root.objectValue else { throw fail("(root)", "expected a JSON object, got \(root.typeName)") }
        try rejectUnknown(object, allowed: topLevelKeys, path: "", fail)

        func string(_ value: JSONValue?, _ key: String, required: Bool) throws(ConfigError) -> String? {
            guard let value else {
                if required { throw fail(key, "is required") }
                return nil
            }
            guard let s = value.stringValue, !s.isEmpty else { throw fail(key, "expected a non-empty string, got \(describe(value))") }
            return s
        }
        func address(_ value: JSONValue?, _ key: String, required: Bool) throws(ConfigError) -> HostPort? {
            guard let text = try string(value, key, required: required) else { return nil }
            guard let parsed = HostPort(parsing: text) else { throw fail(key, "expected host:port, got \"\(text)\"") }
            return parsed
        }
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : (baseDirectory as NSString).appendingPathComponent(path)
        }

        let id = NodeID(try string(object["id"], "id", required: true)!)
        let dataDir = resolve(try string(object["data_dir"], "data_dir", required: true)!)
        let http = try address(object["http"], "http", required: true)!
        let peer = try address(object["peer"], "peer", required: false)

        var members: [MemberConfig] = []
        if let value = object["members"] {
            guard let array = value.arrayValue else { throw fail("members", "expected an array, got \(describe(value))") }
            for (index, element) in array.enumerated() {
                let path = "members[\(index)]"
                guard let member = element.objectValue else { throw fail(path, "expected an object, got \(describe(element))") }
                try rejectUnknown(member, allowed: memberKeys, path: path + ".", fail)
                let memberID = NodeID(try string(member["id"], path + ".id", required: true)!)
                let memberHTTP = try address(member["http"], path + ".http", required: true)!
                let memberPeer = try address(member["peer"], path + ".peer", required: true)!
                var labels: [String: String] = [:]
                if let labelsValue = member["labels"] {
                    guard let labelsObject = labelsValue.objectValue else {
                        throw fail(path + ".labels", "expected an object of strings, got \(describe(labelsValue))")
                    }
                    for (key, value) in labelsObject {
                        guard let s = value.stringValue else { throw fail(path + ".labels.\(key)", "expected a string, got \(describe(value))") }
                        labels[key] = s
                    }
                }
                members.append(MemberConfig(id: memberID, http: memberHTTP, peer: memberPeer, labels: labels))
            }
        }

        var commitMode = CommitMode.async
        if let text = try string(object["commit_mode"], "commit_mode", required: false) {
            guard let mode = CommitMode(rawValue: text) else { throw fail("commit_mode", "expected \"sync\" or \"async\", got \"\(text)\"") }
            commitMode = mode
        }
        var syncReplicas: [NodeID] = []
        if let value = object["sync_replicas"] {
            guard let array = value.arrayValue else { throw fail("sync_replicas", "expected an array of member ids, got \(describe(value))") }
            for (index, element) in array.enumerated() {
                guard let s = element.stringValue, !s.isEmpty else {
                    throw fail("sync_replicas[\(index)]", "expected a member id, got \(describe(element))")
                }
                syncReplicas.append(NodeID(s))
            }
        }
        var syncQuorum: Int?
        if let value = object["sync_quorum"], value != .null {
            guard let k = value.integerValue, k >= 0, k <= Int64(Int32.max) else {
                throw fail("sync_quorum", "expected a whole number of members (ANY k of sync_replicas), got \(describe(value))")
            }
            syncQuorum = Int(k)
        }
        let policyDir = try string(object["policy_dir"], "policy_dir", required: false).map(resolve)
        let initialPrimary = try string(object["initial_primary"], "initial_primary", required: false).map { NodeID($0) }

        var timeouts = TimeoutsConfig()
        if let value = object["timeouts"] {
            try readIntegers(value, into: &timeouts, keys: TimeoutsConfig.keys, path: "timeouts", fail)
        }
        var budgets = BudgetsConfig()
        if let value = object["budgets"] {
            try readIntegers(value, into: &budgets, keys: BudgetsConfig.keys, path: "budgets", fail)
        }

        let clusterName = try string(object["cluster_name"], "cluster_name", required: false) ?? ServerConfig.clusterNameDefault
        if let problem = ServerConfig.clusterNameProblem(clusterName) { throw fail("cluster_name", problem) }

        let config = ServerConfig(
            id: id, dataDir: dataDir, http: http, peer: peer, members: members, commitMode: commitMode,
            syncReplicas: syncReplicas, syncQuorum: syncQuorum, policyDir: policyDir, initialPrimary: initialPrimary,
            timeouts: timeouts, budgets: budgets, clusterName: clusterName)
        try config.validate(source: source)
        return config
    }

    private static func rejectUnknown(
        _ object: [String: JSONValue], allowed: Set<String>, path: String, _ fail: (String, String) -> ConfigError
    ) throws(ConfigError) {
        // Sorted so that the error is the same on every run.
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail(path + unknown, "unknown key (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private static func readIntegers<T>(
        _ value: JSONValue, into target: inout T, keys: [(String, WritableKeyPath<T, UInt64>)], path: String,
        _ fail: (String, String) -> ConfigError
    ) throws(ConfigError) {
        guard let object = value.objectValue else { throw fail(path, "expected an object, got \(describe(value))") }
        try rejectUnknown(object, allowed: Set(keys.map(\.0)), path: path + ".", fail)
        for (key, keyPath) in keys {
            guard let field = object[key] else { continue }
            guard let n = field.integerValue, n >= 0 else {
                throw fail("\(path).\(key)", "expected a non-negative integer, got \(describe(field))")
            }
            target[keyPath: keyPath] = UInt64(n)
        }
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return "the string \"\(s)\""
        default: return "\(value.typeName) \(value.canonicalJSON)"
        }
    }
}
