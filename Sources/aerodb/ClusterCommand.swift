// ClusterCommand.swift — `aerodb cluster labels set|unset|list`: the cluster's labels, cluster
// state written through the WAL (ClusterLabels.swift) over `/v1/cluster/labels`.
//   set KEY=VALUE… --addr PRIMARY   one PUT per label, in the order given; stops at the first
//                                   refusal (those before it are committed, and say so)
//   unset KEY… --addr PRIMARY       one DELETE per label
//   list --addr ANY                 the node's applied view
// Names and values are checked here first (the same rules the server applies), so a typo is a
// usage error before anything is written. Exit codes as `aerodb put`: 0, 1 refused, 2 no answer.
import AeroCore
import AeroServer
import ArgumentParser
import Foundation

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Cluster state: labels.", subcommands: [ClusterLabelsCommand.self])
}

struct ClusterLabelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labels", abstract: "Set, unset or list the cluster's labels (replicated, read by policies as cluster.labels).",
        subcommands: [ClusterLabelsSet.self, ClusterLabelsUnset.self, ClusterLabelsList.self])
}

struct ClusterLabelsSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Set labels on the primary: KEY=VALUE ...")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "KEY=VALUE, one or more.") var assignments: [String]

    func validate() throws {
        guard !assignments.isEmpty else { throw ValidationError("give at least one KEY=VALUE") }
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "=") else {
                throw ValidationError("expected KEY=VALUE, got \"\(assignment.prefix(80))\"")
            }
            let name = String(assignment[..<equals])
            if let problem = ClusterLabels.nameProblem(name) ?? ClusterLabels.valueProblem(name: name, Array(assignment[assignment.index(after: equals)...].utf8)) {
                throw ValidationError(problem)
            }
        }
    }

    func run() async throws {
        for assignment in assignments {
            let equals = assignment.firstIndex(of: "=")!
            let name = String(assignment[..<equals])
            let reply = try await remote.send("PUT", "/v1/cluster/labels/\(encodedKey(name))", body: Data(assignment[assignment.index(after: equals)...].utf8))
            try remote.check(reply)
            let lsn = (try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self)))?["lsn"]?.integerValue
            print("\(name) set (lsn \(lsn.map(String.init) ?? "?"))")
        }
    }
}

struct ClusterLabelsUnset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unset", abstract: "Remove labels on the primary: KEY ...")
    @OptionGroup var remote: RemoteOptions
    @Argument(help: "Label names, one or more.") var names: [String]

    func validate() throws {
        guard !names.isEmpty else { throw ValidationError("give at least one KEY") }
        for name in names { if let problem = ClusterLabels.nameProblem(name) { throw ValidationError(problem) } }
    }

    func run() async throws {
        for name in names {
            let reply = try await remote.send("DELETE", "/v1/cluster/labels/\(encodedKey(name))")
            try remote.check(reply)
            let json = try? JSONParser.parse(String(decoding: reply.body, as: UTF8.self))
            let removed = json?["removed"]?.boolValue == true
            print("\(name) \(removed ? "removed" : "was not set") (lsn \(json?["lsn"]?.integerValue.map(String.init) ?? "?"))")
        }
    }
}

struct ClusterLabelsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The labels as this node applied them.")
    @OptionGroup var remote: RemoteOptions
    @Option(name: .long, help: "Output format: text or json.") var format: PromoteFormat = .text

    func run() async throws {
        let reply = try await remote.send("GET", "/v1/cluster/labels")
        try remote.check(reply)
        let json = try remote.json(reply)
        if format == .json {
            print(json.prettyJSON)
            return
        }
        guard case .object(let labels)? = json["labels"] else { return }
        for name in labels.keys.sorted() { print("\(name)=\(labels[name]?.stringValue ?? "")") }
    }
}
