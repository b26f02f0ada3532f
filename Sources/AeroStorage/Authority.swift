// Authority.swift — the node's durable identity and authority: `authority.json` in the data dir.
//
// Invariants (docs/invariants.md, "Storage"):
//   A1 The file is replaced atomically (`StorageIO.replaceDurably`): written to
//      `authority.json.tmp`, synced, renamed over `authority.json`, directory synced. A crash
//      leaves the old file or the new one.
//   A2 The epoch on disk never goes backwards (`Authority.successorProblem`).
//   A3 The epoch history is append-only: the old history is a prefix of the new one; its epochs
//      strictly increase and its start LSNs never decrease.
//   A4 A primary's current epoch is the last history entry, naming this node.
// The file is JSON (an operator can read it) followed by a line `crc32c <hex>` over the JSON.

import AeroCore
import Foundation

public struct Authority: Sendable, Codable, Hashable {
    public var nodeID: NodeID
    public var role: NodeRole
    public var epoch: Epoch
    /// The primary a replica follows; nil on a primary (and on a replica not yet pointed).
    public var following: NodeID?
    public var history: [EpochHistoryEntry]

    public init(nodeID: NodeID, role: NodeRole, epoch: Epoch, following: NodeID?, history: [EpochHistoryEntry]) {
        self.nodeID = nodeID
        self.role = role
        self.epoch = epoch
        self.following = following
        self.history = history
    }

    /// A fresh standalone primary: epoch 1, starting at LSN 1.
    public static func standalonePrimary(_ nodeID: NodeID, durability: EpochDurability? = nil) -> Authority {
        Authority(nodeID: nodeID, role: .primary, epoch: Epoch(1), following: nil,
                  history: [EpochHistoryEntry(epoch: Epoch(1), primary: nodeID, startLSN: LSN(1), durability: durability)])
    }

    /// A fresh replica that has accepted no epoch yet (epoch 0, empty history).
    public static func newReplica(_ nodeID: NodeID, following: NodeID?) -> Authority {
        Authority(nodeID: nodeID, role: .replica, epoch: .zero, following: following, history: [])
    }

    /// The epoch in force at `lsn` according to the history (nil before the first entry).
    public func epoch(at lsn: LSN) -> Epoch? {
        history.last(where: { $0.startLSN <= lsn })?.epoch
    }

    enum CodingKeys: String, CodingKey { case nodeID = "node_id", role, epoch, following, history }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nodeID = NodeID(try c.decode(String.self, forKey: .nodeID))
        role = try c.decode(NodeRole.self, forKey: .role)
        epoch = Epoch(try c.decode(UInt64.self, forKey: .epoch))
        following = try c.decodeIfPresent(String.self, forKey: .following).map { NodeID($0) }
        history = try c.decode([EpochHistoryEntry].self, forKey: .history)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(nodeID.rawValue, forKey: .nodeID)
        try c.encode(role, forKey: .role)
        try c.encode(epoch.rawValue, forKey: .epoch)
        try c.encode(following?.rawValue, forKey: .following)
        try c.encode(history, forKey: .history)
    }

    /// Checks A3/A4 on one value; returns why it is not well formed.
    public func wellFormedProblem() -> String? {
        for (a, b) in zip(history, history.dropFirst()) {
            if b.epoch <= a.epoch { return "epoch history is not strictly increasing (\(a.epoch) then \(b.epoch))" }
            if b.startLSN < a.startLSN { return "epoch history start LSNs decrease (\(a.startLSN) then \(b.startLSN))" }
        }
        if let last = history.last, last.epoch > epoch { return "history names epoch \(last.epoch) above the current epoch \(epoch)" }
        if role == .primary {
            guard let last = history.last, last.epoch == epoch, last.primary == nodeID else {
                return "a primary's current epoch \(epoch) must be the last history entry and name this node"
            }
            if following != nil { return "a primary follows no one" }
        }
        return nil
    }

    /// Checks A2/A3 for replacing `self` by `next`; returns why the change is refused.
    public func successorProblem(_ next: Authority) -> String? {
        if next.nodeID != nodeID { return "node id cannot change (\(nodeID) to \(next.nodeID))" }
        if next.epoch < epoch { return "epoch cannot go backwards on disk (\(epoch) to \(next.epoch))" }
        if next.history.count < history.count || Array(next.history.prefix(history.count)) != history {
            return "the epoch history is append-only; the new history does not extend the old one"
        }
        return next.wellFormedProblem()
    }
}

/// Reads and atomically replaces `authority.json` (A1).
enum AuthorityFile {
    static let name = "authority.json"

    static func encode(_ authority: Authority) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // Encoding a value of plain fields cannot fail; a failure is a programmer error.
        let json = try! encoder.encode(authority)
        var out = Array(json)
        out.append(0x0A)
        let crc = String(CRC32C.checksum(Array(json)), radix: 16)
        out += Array(("crc32c " + String(repeating: "0", count: 8 - crc.count) + crc + "\n").utf8)
        return out
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> Authority {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let marker = text.range(of: "\ncrc32c ", options: .backwards) else {
            throw StorageError.authority("\(path): missing the crc32c line")
        }
        let json = Array(text[..<marker.lowerBound].utf8)
        let crcText = text[marker.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
        guard let crc = UInt32(crcText, radix: 16), crc == CRC32C.checksum(json) else {
            throw StorageError.authority("\(path): checksum mismatch (file damaged)")
        }
        do {
            let authority = try JSONDecoder().decode(Authority.self, from: Data(json))
            if let problem = authority.wellFormedProblem() { throw StorageError.authority("\(path): \(problem)") }
            return authority
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.authority("\(path): \(error)")
        }
    }

    static func read(directory: String, io: any StorageIO) throws -> Authority? {
        let path = directory + "/" + name
        guard io.exists(path) else { return nil }
        let file = try io.open(path, create: false)
        defer { file.close() }
        return try decode(try file.readAll(), path: path)
    }

    /// Writes `authority` atomically and durably (A1). The caller checked `successorProblem`.
    static func write(_ authority: Authority, directory: String, io: any StorageIO) throws {
        try io.replaceDurably(name, in: directory, with: encode(authority))
    }
}
