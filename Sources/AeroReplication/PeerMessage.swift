// PeerMessage.swift — the messages of the peer channel, as values.
//
// Who sends what (R = replica, P = primary, C = promotion candidate; docs/replication.md has the
// full sequence diagrams):
//
//     R -> P  hello        I am node N at epoch E, durable to LSN L (written in epoch e), history H
//     P -> R  hello        the same facts about the primary (its history is what the replica
//                          adopts: the storage engine accepts a record of epoch e only when its
//                          authority file holds e's history entry)
//     R -> P  streamFrom   send me records from LSN L+1
//     P -> R  records      a batch of WAL records (only records durable on the primary)
//     R -> P  ack          durable through D, applied through A
//     P -> R  heartbeat    my epoch, the LSN acknowledged to clients, my durable LSN
//     P -> R  mustReseed   your WAL position is no longer retained; reseed from checkpoint C
//     * -> *  refuse       rule id + explanation, then close
//
// Fencing, unfencing and re-pointing are not peer messages: a promotion asks for them over the
// admin HTTP routes (`/v1/admin/fence`, `/unfence`, `/follow`; PromotionHTTP.swift), which
// answer with a refusal id. Type bytes 8–11 carried such messages once, were never sent, and
// are retired: never reused, a frame carrying one is malformed.

import AeroCore

/// One WAL record as shipped to a replica. The payload is opaque to replication: the storage
/// engine encodes it and checks it again when it appends.
public struct WireRecord: Hashable, Sendable {
    public var lsn: LSN
    public var epoch: Epoch
    /// The storage engine's record kind (put, delete, txn, epoch marker, ...).
    public var kind: UInt8
    public var payload: [UInt8]

    public init(lsn: LSN, epoch: Epoch, kind: UInt8, payload: [UInt8]) {
        self.lsn = lsn
        self.epoch = epoch
        self.kind = kind
        self.payload = payload
    }
}

public struct Hello: Hashable, Sendable {
    public var nodeID: NodeID
    /// The sender's current epoch (durable in its authority file).
    public var epoch: Epoch
    /// The sender's last durable LSN (`LSN.zero` for an empty WAL).
    public var lastDurableLSN: LSN
    /// The epoch of the record at `lastDurableLSN` (`Epoch.zero` for an empty WAL). With the
    /// primary's epoch history this tells whether the sender's WAL is a prefix of the primary's.
    public var lastDurableEpoch: Epoch
    /// The sender's epoch history (epoch, primary, start LSN), oldest first; at most
    /// `WireProtocol.historyEntriesMax` entries.
    public var history: [EpochHistoryEntry]

    public init(nodeID: NodeID, epoch: Epoch, lastDurableLSN: LSN, lastDurableEpoch: Epoch, history: [EpochHistoryEntry]) {
        self.nodeID = nodeID
        self.epoch = epoch
        self.lastDurableLSN = lastDurableLSN
        self.lastDurableEpoch = lastDurableEpoch
        self.history = history
    }
}

public struct StreamFrom: Hashable, Sendable {
    /// The first LSN wanted: the replica's durable LSN + 1.
    public var fromLSN: LSN
    public init(fromLSN: LSN) { self.fromLSN = fromLSN }
}

public struct RecordBatch: Hashable, Sendable {
    /// The epoch of the primary that sends the batch.
    public var senderEpoch: Epoch
    /// Consecutive records, ascending LSN.
    public var records: [WireRecord]

    public init(senderEpoch: Epoch, records: [WireRecord]) {
        self.senderEpoch = senderEpoch
        self.records = records
    }
}

public struct Ack: Hashable, Sendable {
    public var durableLSN: LSN
    public var appliedLSN: LSN
    public init(durableLSN: LSN, appliedLSN: LSN) {
        self.durableLSN = durableLSN
        self.appliedLSN = appliedLSN
    }
}

public struct Heartbeat: Hashable, Sendable {
    public var primaryEpoch: Epoch
    /// The highest LSN the primary has acknowledged to clients (per its commit mode).
    public var primaryAckedLSN: LSN
    /// The primary's durable LSN: a replica's lag in LSNs is this minus its applied LSN.
    public var primaryDurableLSN: LSN
    public init(primaryEpoch: Epoch, primaryAckedLSN: LSN, primaryDurableLSN: LSN) {
        self.primaryEpoch = primaryEpoch
        self.primaryAckedLSN = primaryAckedLSN
        self.primaryDurableLSN = primaryDurableLSN
    }
}

public struct MustReseed: Hashable, Sendable {
    public var reason: String
    /// The LSN of the checkpoint the replica must be re-seeded from.
    public var checkpointLSN: LSN
    public init(reason: String, checkpointLSN: LSN) {
        self.reason = reason
        self.checkpointLSN = checkpointLSN
    }
}

public struct Refuse: Hashable, Sendable {
    /// A stable rule id from docs/server.md, e.g. `REPL-STALE-EPOCH`.
    public var ruleID: String
    public var message: String
    public init(ruleID: String, message: String) {
        self.ruleID = ruleID
        self.message = message
    }
}

/// A message of the peer channel.
public enum PeerMessage: Hashable, Sendable {
    case hello(Hello)
    case streamFrom(StreamFrom)
    case records(RecordBatch)
    case ack(Ack)
    case heartbeat(Heartbeat)
    case mustReseed(MustReseed)
    case refuse(Refuse)

    /// The type byte on the wire. Stable: never renumber, only add; 8–11 are retired (above).
    public enum Kind: UInt8, CaseIterable, Sendable {
        case hello = 1
        case streamFrom = 2
        case records = 3
        case ack = 4
        case heartbeat = 5
        case mustReseed = 6
        case refuse = 7
    }

    public var kind: Kind {
        switch self {
        case .hello: return .hello
        case .streamFrom: return .streamFrom
        case .records: return .records
        case .ack: return .ack
        case .heartbeat: return .heartbeat
        case .mustReseed: return .mustReseed
        case .refuse: return .refuse
        }
    }
}
