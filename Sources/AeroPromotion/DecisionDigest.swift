// DecisionDigest.swift — the compare-and-swap digest an operator approves (`facts_digest` of a
// dry run, given back as `--expect-facts-digest`; PromotionCoordinator rule 3).
//
// It covers what the decision depended on, not positions that move with every write: an
// operator who approved "switch over to n2, allowed" approved that cluster shape and that
// outcome, not an LSN. The basis (docs/promotion-rules.md, "The compare-and-swap digest"):
//   cluster   name, epoch, primary, commit_mode, sync_replicas, sync_quorum, durability, labels
//   nodes     per member in document order: id, role, reachable, epoch, following, labels,
//             policy_set_digest, engine_version
//   request   kind, candidate, requested_by
//   policies  the policy set digest and engine version the decision was made with
//   outcome   allowed, and the source of every reason (`rule:ID`, `policy:NAME`)
// Left out on purpose: captured_at (the clock), every LSN, last_contact_ms (they move under
// load), and wal/recovering (when they matter, WAL-1 refuses and the outcome changes).
// The digest is SHA-256 of the basis in canonical JSON; the basis is recorded with the
// decision, so a refusal can name what changed (`changes(from:to:)`).

import AeroCore

public enum DecisionDigest {
    /// How many changed fields a PROMOTE-DIGEST-1 message names at most (the rest are counted).
    public static let changesNamedMax = 8

    public static func basis(_ facts: FactsDocument, _ decision: Decision) -> JSONValue {
        basis(facts, policySetDigest: decision.policySetDigest, engineVersion: decision.engineVersion,
              allowed: decision.allowed, reasonSources: decision.reasons.map(\.source))
    }

    /// The basis from the parts of a decision (Decision's init computes its digest from them).
    public static func basis(_ facts: FactsDocument, policySetDigest: String, engineVersion: String,
                             allowed: Bool, reasonSources: [String]) -> JSONValue {
        let json = facts.json
        let clusterKeys = ["name", "epoch", "primary", "commit_mode", "sync_replicas", "sync_quorum", "durability", "labels"]
        let nodeKeys = ["id", "role", "reachable", "epoch", "following", "labels", "policy_set_digest", "engine_version"]
        var cluster: [String: JSONValue] = [:]
        for key in clusterKeys { cluster[key] = json["cluster"]?[key] ?? .null }
        // The derived durability of a document written without the field is what was decided on.
        if let durability = facts.cluster.durability { cluster["durability"] = durability.json }
        let nodes: [JSONValue] = (json["nodes"]?.arrayValue ?? []).map { node in
            var kept: [String: JSONValue] = [:]
            for key in nodeKeys { kept[key] = node[key] ?? .null }
            return .object(kept)
        }
        return .object([
            "cluster": .object(cluster),
            "nodes": .array(nodes),
            "request": json["request"] ?? .null,
            "policies": .object(["set_digest": .string(policySetDigest), "engine_version": .string(engineVersion)]),
            "outcome": .object([
                "allowed": .bool(allowed),
                "reasons": .array(reasonSources.map { .string($0) }),
            ]),
        ])
    }

    public static func digest(_ basis: JSONValue) -> String { Digest.sha256Hex(basis.canonicalJSON.utf8) }

    /// The fields that differ between two bases, as paths with both values, e.g.
    /// `nodes[n3].reachable: true -> false`. Nodes are named by id, not index.
    public static func changes(from old: JSONValue, to new: JSONValue) -> [String] {
        var out: [String] = []
        diff(old, new, path: "", into: &out)
        return out
    }

    private static func diff(_ a: JSONValue, _ b: JSONValue, path: String, into out: inout [String]) {
        guard a != b else { return }
        switch (a, b) {
        case (.object(let x), .object(let y)):
            for key in Set(x.keys).union(y.keys).sorted() {
                diff(x[key] ?? .null, y[key] ?? .null, path: path.isEmpty ? key : "\(path).\(key)", into: &out)
            }
        case (.array(let x), .array(let y)) where path == "nodes":
            // Members by id: a different order or a member more or less reads as such.
            let byID = { (nodes: [JSONValue]) in Dictionary(nodes.map { ($0["id"]?.stringValue ?? "?", $0) }, uniquingKeysWith: { a, _ in a }) }
            let (ox, oy) = (byID(x), byID(y))
            for id in Set(ox.keys).union(oy.keys).sorted() {
                diff(ox[id] ?? .null, oy[id] ?? .null, path: "nodes[\(id)]", into: &out)
            }
        default:
            out.append("\(path): \(a.canonicalJSON) -> \(b.canonicalJSON)")
        }
    }

    /// `changes` as one clause for a refusal message, at most `changesNamedMax` of them.
    public static func describe(_ changes: [String]) -> String {
        guard !changes.isEmpty else { return "nothing the digest covers differs (a different request?)" }
        let named = changes.prefix(changesNamedMax).joined(separator: "; ")
        return changes.count > changesNamedMax ? "\(named); and \(changes.count - changesNamedMax) more" : named
    }
}
