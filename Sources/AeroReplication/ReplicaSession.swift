// ReplicaSession.swift — the replica side of one replication connection, as a pure state machine.
//
// Terms
//   local epoch     the replica's epoch, durable in its authority file. Never decreases.
//   durable LSN     the last LSN written and fsync'd in the replica's WAL.
//   applied LSN     the last LSN applied to the replica's readable state; <= durable LSN.
//   appended LSN    the last LSN handed to the WAL (`append` action); durable <= appended.
//   expected LSN    the LSN the next shipped record must carry: appended + 1.
//
// States (one connection; a new connection starts a new session)
//
//     idle --connected--> awaitingHello --hello(epoch == local)--------------> streaming
//                             |      \--hello(epoch > local)--> awaitingEpochPersist
//                             |                                   --epochPersisted--> streaming
//                             +-- any refusal / mustReseed -------------------------> closed
//     streaming --records/heartbeat/local progress--> streaming
//     streaming --refusal / mustReseed / connectionClosed--> closed
//
// Transitions: `connected()` (idle -> awaitingHello), `received(_:)` (awaitingHello ->
// streaming | awaitingEpochPersist | closed; streaming -> streaming | closed),
// `epochPersisted()` (awaitingEpochPersist -> streaming), `localDurable(_:)`,
// `localApplied(_:)` and `localDurableAndApplied(_:)` (streaming -> streaming),
// `connectionClosed()` (any -> closed).
//
// Invariants (checked by `checkInvariants()` after every transition)
// 1. applied <= durable <= appended, and none of them ever decreases.
// 2. The local epoch never decreases and the local epoch history only grows: the replica
//    follows a primary only if its own history is a prefix of the primary's
//    (REPL-HISTORY-MISMATCH otherwise), and persists the primary's epoch and history (action
//    `persistAuthority`) before it asks for the first record. A record is appended only when
//    its epoch is <= the local epoch.
// 3. Continuity: every appended record has LSN == previous appended + 1; the first one
//    after the handshake has LSN == durable + 1 at the time of the handshake.
// 4. Epoch lineage: the epochs of appended records never decrease.
// 5. The replica never accepts records from, nor follows, a peer of a lower epoch than its own
//    (rule REPL-STALE-EPOCH): such a peer is sent `refuse` and the connection is closed.
// 6. Ack policy: an `ack` is sent every time the durable or applied LSN advances and in
//    answer to every heartbeat, so a primary waiting for a sync replica is never left waiting
//    for an LSN the replica already has durably. When both advance together
//    (`localDurableAndApplied`: one storage flush, whose records the engine applies as it makes
//    them durable) one ack carries both.
// 7. Once closed, a session takes no further input from the peer; reaching it with a peer
//    message is a programmer error (the I/O layer stops reading on `close`).

import AeroCore

/// The facts a replica brings to a session, read from its storage before connecting.
public struct ReplicaPosition: Hashable, Sendable {
    public var nodeID: NodeID
    public var epoch: Epoch
    public var durableLSN: LSN
    /// Epoch of the record at `durableLSN` (`Epoch.zero` when the WAL is empty).
    public var durableRecordEpoch: Epoch
    public var appliedLSN: LSN
    /// The replica's epoch history from its authority file, oldest first.
    public var history: [EpochHistoryEntry]

    public init(nodeID: NodeID, epoch: Epoch, durableLSN: LSN, durableRecordEpoch: Epoch, appliedLSN: LSN, history: [EpochHistoryEntry]) {
        precondition(appliedLSN <= durableLSN, "applied LSN \(appliedLSN) past durable LSN \(durableLSN)")
        precondition(durableRecordEpoch <= epoch, "last record's epoch \(durableRecordEpoch) above the node's epoch \(epoch)")
        precondition((durableLSN == .zero) == (durableRecordEpoch == .zero), "an empty WAL has no record epoch")
        self.nodeID = nodeID
        self.epoch = epoch
        self.durableLSN = durableLSN
        self.durableRecordEpoch = durableRecordEpoch
        self.appliedLSN = appliedLSN
        self.history = history
    }
}

/// Why a replica session ended.
public enum ReplicaSessionEnd: Hashable, Sendable {
    /// The peer closed, or the I/O layer reported the connection gone.
    case connectionClosed
    /// This replica refused the peer (rule id and explanation were sent to it).
    case refusedPeer(Refuse)
    /// The peer refused this replica.
    case refusedByPeer(Refuse)
    /// The primary no longer has the WAL this replica needs.
    case mustReseed(MustReseed)
}

public struct ReplicaSession: Sendable {
    public enum State: Hashable, Sendable {
        case idle
        case awaitingHello
        /// The primary's epoch or history extends ours; waiting for it to be durable locally.
        case awaitingEpochPersist(primary: Hello)
        case streaming(primary: NodeID)
        case closed(ReplicaSessionEnd)
    }

    /// What the I/O layer must do, in order.
    public enum Action: Hashable, Sendable {
        case send(PeerMessage)
        /// Durably record `epoch`, that this node follows `primary`, and the primary's epoch
        /// `history` (an extension of the local one) in the authority file, then call
        /// `epochPersisted()`.
        case persistAuthority(epoch: Epoch, primary: NodeID, history: [EpochHistoryEntry])
        /// Hand these records to the WAL (write, fsync, apply); report progress with
        /// `localDurable(_:)` and `localApplied(_:)`.
        case append([WireRecord])
        /// The primary's progress, for staleness reporting and `min_lsn` reads.
        case primaryProgress(ackedLSN: LSN, durableLSN: LSN)
        /// The replica must be re-seeded from a checkpoint before it can follow again.
        case reseed(MustReseed)
        /// Close the connection (after the sends before it are flushed).
        case close
    }

    /// The primary this session expects to talk to (from configuration or the authority file).
    public let expectedPrimary: NodeID
    public private(set) var state: State = .idle
    public private(set) var epoch: Epoch
    public private(set) var durableLSN: LSN
    public private(set) var appliedLSN: LSN
    public private(set) var appendedLSN: LSN
    /// Epoch of the last appended record (lineage check).
    public private(set) var lastRecordEpoch: Epoch
    public let nodeID: NodeID
    public private(set) var history: [EpochHistoryEntry]

    public init(position: ReplicaPosition, expectedPrimary: NodeID) {
        precondition(position.nodeID != expectedPrimary, "a node cannot replicate from itself")
        self.nodeID = position.nodeID
        self.expectedPrimary = expectedPrimary
        self.epoch = position.epoch
        self.durableLSN = position.durableLSN
        self.appliedLSN = position.appliedLSN
        self.appendedLSN = position.durableLSN
        self.lastRecordEpoch = position.durableRecordEpoch
        self.history = position.history
        checkInvariants()
    }

    // MARK: events

    /// The TCP connection to the primary is up.
    public mutating func connected() -> [Action] {
        guard case .idle = state else { preconditionFailure("connected() in state \(state)") }
        state = .awaitingHello
        return [.send(.hello(Hello(
            nodeID: nodeID, epoch: epoch, lastDurableLSN: durableLSN,
            lastDurableEpoch: lastRecordEpoch, history: history)))]
    }

    /// A message from the primary.
    public mutating func received(_ message: PeerMessage) -> [Action] {
        defer { checkInvariants() }
        switch state {
        case .idle, .closed:
            preconditionFailure("received \(message.kind) in state \(state)")
        case .awaitingEpochPersist:
            if case .refuse(let refuse) = message {
                state = .closed(.refusedByPeer(refuse))
                return [.close]
            }
            // The primary speaks only after our streamFrom; anything else breaks the protocol.
            return refusePeer(RuleID.replProtocol.rawValue,
                "received \(message.kind) before this replica asked to stream")
        case .awaitingHello:
            return receivedInHandshake(message)
        case .streaming(let primary):
            return receivedWhileStreaming(message, primary: primary)
        }
    }

    /// The authority from `persistAuthority` is durable.
    /// After the session closed this is accepted and changes nothing: the epoch is durable and
    /// the next session reads it from the authority file.
    public mutating func epochPersisted() -> [Action] {
        if case .closed = state { return [] }
        guard case .awaitingEpochPersist(let hello) = state else {
            preconditionFailure("epochPersisted() in state \(state)")
        }
        precondition(hello.epoch >= epoch && hello.history.starts(with: history), "persisted authority does not extend the local one")
        epoch = hello.epoch
        history = hello.history
        state = .streaming(primary: hello.nodeID)
        checkInvariants()
        return [.send(.streamFrom(StreamFrom(fromLSN: durableLSN.next)))]
    }

    /// The WAL is durable through `lsn` (after an fsync of appended records).
    /// Appends finish after the connection may have closed: then the position is updated and
    /// nothing is sent. The I/O layer starts a new session only once appends have settled.
    public mutating func localDurable(_ lsn: LSN) -> [Action] {
        let open = isStreamingOrClosed("localDurable(\(lsn))")
        precondition(lsn >= durableLSN && lsn <= appendedLSN,
            "durable LSN \(lsn) outside [\(durableLSN), \(appendedLSN)]")
        guard lsn > durableLSN else { return [] }
        durableLSN = lsn
        checkInvariants()
        return open ? [.send(.ack(Ack(durableLSN: durableLSN, appliedLSN: appliedLSN)))] : []
    }

    /// Records through `lsn` are applied to the readable state.
    public mutating func localApplied(_ lsn: LSN) -> [Action] {
        let open = isStreamingOrClosed("localApplied(\(lsn))")
        precondition(lsn >= appliedLSN && lsn <= durableLSN,
            "applied LSN \(lsn) outside [\(appliedLSN), \(durableLSN)]")
        guard lsn > appliedLSN else { return [] }
        appliedLSN = lsn
        checkInvariants()
        return open ? [.send(.ack(Ack(durableLSN: durableLSN, appliedLSN: appliedLSN)))] : []
    }

    /// Records through `lsn` are durable and applied (one flush of the replica's WAL). One ack.
    public mutating func localDurableAndApplied(_ lsn: LSN) -> [Action] {
        let open = isStreamingOrClosed("localDurableAndApplied(\(lsn))")
        precondition(lsn >= durableLSN && lsn <= appendedLSN,
            "durable LSN \(lsn) outside [\(durableLSN), \(appendedLSN)]")
        guard lsn > durableLSN || lsn > appliedLSN else { return [] }
        durableLSN = lsn
        appliedLSN = lsn
        checkInvariants()
        return open ? [.send(.ack(Ack(durableLSN: durableLSN, appliedLSN: appliedLSN)))] : []
    }

    /// true while streaming, false once closed; any other state is a programmer error.
    private func isStreamingOrClosed(_ event: String) -> Bool {
        switch state {
        case .streaming: return true
        case .closed: return false
        case .idle, .awaitingHello, .awaitingEpochPersist: preconditionFailure("\(event) in state \(state)")
        }
    }

    /// The connection is gone (peer closed, I/O error, or our own `close` completed).
    public mutating func connectionClosed() {
        if case .closed = state { return }
        state = .closed(.connectionClosed)
    }

    // MARK: handshake

    private mutating func receivedInHandshake(_ message: PeerMessage) -> [Action] {
        switch message {
        case .hello(let hello):
            guard hello.nodeID == expectedPrimary else {
                return refusePeer(RuleID.replWrongPrimary.rawValue,
                    "this replica follows \(expectedPrimary), but the peer is \(hello.nodeID)")
            }
            guard hello.epoch >= epoch else {
                return refusePeer(RuleID.replStaleEpoch.rawValue,
                    "peer \(hello.nodeID) is at epoch \(hello.epoch), below this replica's epoch \(epoch); "
                        + "a replica never follows a lower epoch")
            }
            if let problem = Self.primaryHistoryProblem(hello) {
                return refusePeer(RuleID.replProtocol.rawValue, "\(hello.nodeID)'s epoch history is not a primary's: \(problem)")
            }
            guard hello.history.starts(with: history) else {
                return refusePeer(RuleID.replHistoryMismatch.rawValue,
                    "this replica's epoch history \(Self.describe(history)) is not a prefix of \(hello.nodeID)'s "
                        + "\(Self.describe(hello.history)); following it would rewrite history")
            }
            if hello.epoch > epoch || hello.history.count > history.count {
                state = .awaitingEpochPersist(primary: hello)
                return [.persistAuthority(epoch: hello.epoch, primary: hello.nodeID, history: hello.history)]
            }
            state = .streaming(primary: hello.nodeID)
            return [.send(.streamFrom(StreamFrom(fromLSN: durableLSN.next)))]
        case .refuse(let refuse):
            state = .closed(.refusedByPeer(refuse))
            return [.close]
        case .mustReseed(let reseed):
            state = .closed(.mustReseed(reseed))
            return [.reseed(reseed), .close]
        case .streamFrom, .records, .ack, .heartbeat:
            return refusePeer(RuleID.replProtocol.rawValue,
                "received \(message.kind) before the primary's hello")
        }
    }

    // MARK: streaming

    private mutating func receivedWhileStreaming(_ message: PeerMessage, primary: NodeID) -> [Action] {
        switch message {
        case .records(let batch):
            return receivedRecords(batch, primary: primary)
        case .heartbeat(let beat):
            if let refusal = checkSenderEpoch(beat.primaryEpoch, primary: primary) { return refusal }
            return [
                .primaryProgress(ackedLSN: beat.primaryAckedLSN, durableLSN: beat.primaryDurableLSN),
                .send(.ack(Ack(durableLSN: durableLSN, appliedLSN: appliedLSN))),
            ]
        case .refuse(let refuse):
            state = .closed(.refusedByPeer(refuse))
            return [.close]
        case .mustReseed(let reseed):
            state = .closed(.mustReseed(reseed))
            return [.reseed(reseed), .close]
        case .hello, .streamFrom, .ack:
            return refusePeer(RuleID.replProtocol.rawValue,
                "received \(message.kind) from the primary while streaming")
        }
    }

    private mutating func receivedRecords(_ batch: RecordBatch, primary: NodeID) -> [Action] {
        if let refusal = checkSenderEpoch(batch.senderEpoch, primary: primary) { return refusal }
        guard !batch.records.isEmpty else {
            return refusePeer(RuleID.replProtocol.rawValue, "received an empty records batch")
        }
        var expected = appendedLSN.next
        var lineage = lastRecordEpoch
        for record in batch.records {
            guard record.lsn == expected else {
                return refusePeer(RuleID.replLsnGap.rawValue,
                    "expected record LSN \(expected), received \(record.lsn): the stream must continue "
                        + "exactly after this replica's last record")
            }
            guard record.epoch >= lineage else {
                return refusePeer(RuleID.replEpochRegression.rawValue,
                    "record \(record.lsn) has epoch \(record.epoch), below the previous record's epoch \(lineage)")
            }
            guard record.epoch <= batch.senderEpoch, record.epoch != .zero else {
                return refusePeer(RuleID.replEpochRegression.rawValue,
                    "record \(record.lsn) has epoch \(record.epoch), outside 1...\(batch.senderEpoch) of its sender")
            }
            lineage = record.epoch
            expected = record.lsn.next
        }
        appendedLSN = batch.records[batch.records.count - 1].lsn
        lastRecordEpoch = lineage
        return [.append(batch.records)]
    }

    /// Every message of the primary carries its epoch: it must be exactly the session's epoch.
    private mutating func checkSenderEpoch(_ senderEpoch: Epoch, primary: NodeID) -> [Action]? {
        if senderEpoch < epoch {
            return refusePeer(RuleID.replStaleEpoch.rawValue,
                "\(primary) sent epoch \(senderEpoch), below this replica's epoch \(epoch)")
        }
        if senderEpoch > epoch {
            // A primary cannot change epoch inside a session; a new epoch means a new handshake.
            return refusePeer(RuleID.replProtocol.rawValue,
                "\(primary) changed epoch from \(epoch) to \(senderEpoch) inside a session")
        }
        return nil
    }

    /// A primary's history is strictly increasing in epoch, non-decreasing in start LSN, and
    /// ends with the primary's own current epoch.
    static func primaryHistoryProblem(_ hello: Hello) -> String? {
        for (a, b) in zip(hello.history, hello.history.dropFirst()) {
            if b.epoch <= a.epoch { return "epochs not increasing (\(a.epoch) then \(b.epoch))" }
            if b.startLSN < a.startLSN { return "start LSNs decrease (\(a.startLSN) then \(b.startLSN))" }
        }
        guard let last = hello.history.last, last.epoch == hello.epoch, last.primary == hello.nodeID else {
            return "its last entry must be epoch \(hello.epoch) led by \(hello.nodeID)"
        }
        return nil
    }

    static func describe(_ history: [EpochHistoryEntry]) -> String {
        "[" + history.map { "\($0.epoch):\($0.primary)@\($0.startLSN)" }.joined(separator: ", ") + "]"
    }

    private mutating func refusePeer(_ rule: String, _ message: String) -> [Action] {
        let refuse = Refuse(ruleID: rule, message: message)
        state = .closed(.refusedPeer(refuse))
        return [.send(.refuse(refuse)), .close]
    }

    // MARK: invariants

    func checkInvariants() {
        precondition(appliedLSN <= durableLSN, "invariant 1: applied \(appliedLSN) > durable \(durableLSN)")
        precondition(durableLSN <= appendedLSN, "invariant 1: durable \(durableLSN) > appended \(appendedLSN)")
        precondition(lastRecordEpoch <= epoch, "invariant 2: record epoch \(lastRecordEpoch) > local epoch \(epoch)")
        precondition((appendedLSN == .zero) == (lastRecordEpoch == .zero), "invariant 4: empty WAL with a record epoch")
    }
}
