// EpochHistoryEntry.swift — one epoch of the cluster's history, the value the authority file
// (AeroStorage's Authority.swift) records and the peer protocol ships in hello and follow.
//
// Lives in AeroCore so the pure replication session machines can compare histories without
// importing the storage engine. The history's rules (A3, append-only; A4, a primary's epoch is
// the last entry) are kept by the authority file that stores it.

/// One epoch of the cluster's history: who was primary, from which LSN, and what
/// "acknowledged" meant in it (nil: async, or an entry written before durability was recorded).
public struct EpochHistoryEntry: Sendable, Codable, Hashable {
    public var epoch: Epoch
    public var primary: NodeID
    public var startLSN: LSN
    /// The epoch's acknowledging set and quorum (EpochDurability.swift), fixed when it began.
    public var durability: EpochDurability?

    public init(epoch: Epoch, primary: NodeID, startLSN: LSN, durability: EpochDurability? = nil) {
        self.epoch = epoch
        self.primary = primary
        self.startLSN = startLSN
        self.durability = durability
    }

    enum CodingKeys: String, CodingKey { case epoch, primary, startLSN = "start_lsn", quorum, set }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = Epoch(try c.decode(UInt64.self, forKey: .epoch))
        primary = NodeID(try c.decode(String.self, forKey: .primary))
        startLSN = LSN(try c.decode(UInt64.self, forKey: .startLSN))
        if let quorum = try c.decodeIfPresent(Int.self, forKey: .quorum) {
            let set = try c.decode([String].self, forKey: .set).map { NodeID($0) }
            guard quorum >= 1, quorum <= set.count, Set(set).count == set.count, !set.contains(primary) else {
                throw DecodingError.dataCorruptedError(forKey: .quorum, in: c, debugDescription: "quorum \(quorum) of set \(set) is not a durability (Q1, Q2)")
            }
            durability = EpochDurability(quorum: quorum, set: set)
        } else {
            durability = nil
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch.rawValue, forKey: .epoch)
        try c.encode(primary.rawValue, forKey: .primary)
        try c.encode(startLSN.rawValue, forKey: .startLSN)
        if let durability {
            try c.encode(durability.quorum, forKey: .quorum)
            try c.encode(durability.set.map(\.rawValue), forKey: .set)
        }
    }

    /// The JSON form used by status, `/v1/admin/follow` and the re-seed client (`durability`
    /// left out when there is none, as before it was recorded).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "epoch": .integer(Int64(epoch.rawValue)), "primary": .string(primary.rawValue),
            "start_lsn": .integer(Int64(startLSN.rawValue)),
        ]
        if let durability { fields["durability"] = durability.json }
        return .object(fields)
    }

    /// Parses the form above; nil when a field is missing or malformed.
    public init?(json: JSONValue) {
        guard let e = json["epoch"]?.integerValue, e > 0, let p = json["primary"]?.stringValue, !p.isEmpty,
              let s = json["start_lsn"]?.integerValue, s >= 0 else { return nil }
        var durability: EpochDurability?
        if let value = json["durability"], value != .null {
            guard let parsed = EpochDurability(json: value), !parsed.set.contains(NodeID(p)) else { return nil }
            durability = parsed
        }
        self.init(epoch: Epoch(UInt64(e)), primary: NodeID(p), startLSN: LSN(UInt64(s)), durability: durability)
    }
}
