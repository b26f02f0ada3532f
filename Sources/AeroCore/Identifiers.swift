// Identifiers.swift — the value types every layer shares.
//
// LSN: a position in the write-ahead log. Dense, strictly increasing, starting at 1;
//      0 means "nothing yet".
// Epoch: the authority term. Only the primary of the current epoch may write; epochs never
//        go backwards on disk or on the wire.
// NodeID: a cluster member's stable name from configuration.

/// A write-ahead-log position. `LSN.zero` means no record.
public struct LSN: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    public static let zero = LSN(0)
    public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The position right after this one. Overflow is a programmer error (2^64 records).
    public var next: LSN {
        precondition(rawValue < UInt64.max, "LSN overflow")
        return LSN(rawValue + 1)
    }

    public var description: String { String(rawValue) }
}

/// The authority term. Exactly one node may accept writes in a given epoch.
public struct Epoch: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    public static let zero = Epoch(0)
    public static func < (lhs: Epoch, rhs: Epoch) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The epoch a promotion creates. Overflow is a programmer error.
    public var successor: Epoch {
        precondition(rawValue < UInt64.max, "epoch overflow")
        return Epoch(rawValue + 1)
    }

    public var description: String { String(rawValue) }
}

/// A cluster member's name, as written in configuration.
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}
