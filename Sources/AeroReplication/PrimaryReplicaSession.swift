// PrimaryReplicaSession.swift — the primary side of one replica's connection, as a pure state
// machine: where to stream from, whether the replica must be re-seeded, its acknowledgements.
//
// Terms
//   view            the primary's own facts at the time of an event (`PrimaryView`): epoch,
//                   durable LSN, oldest LSN still in its WAL, checkpoint, epoch history.
//   next LSN        the first LSN not yet sent to this replica.
//   acked durable   the highest durable LSN the replica acknowledged in this session.
//   window          `inFlightLSNMax`: LSNs sent but not acknowledged durable are bounded, so a
//                   slow replica costs the primary bounded memory and socket buffer.
//
// States
//
//     awaitingHello --hello ok--> awaitingStreamFrom --streamFrom(L+1)--> streaming
//          |   \--hello needs WAL that is gone--> closed (mustReseed sent)
//          \-- hello refused (unknown, stale, diverged, history) --> closed (refuse sent)
//     streaming --ack / localDurable / heartbeatDue--> streaming
//     any --refuse received / protocol violation / connectionClosed--> closed
//
// Transitions: `received(_:view:)` (all peer input), `localDurable(_:)` (streaming ->
// streaming, sends records), `heartbeatDue(...)` (streaming -> streaming),
// `connectionClosed()` (any -> closed).
//
// Invariants (checked by `checkInvariants()` after every transition)
// 1. Only records durable on the primary are sent: sent-through <= the primary's durable LSN
//    when it was sent. (So a replica is never ahead of a primary that crashes and recovers.)
// 2. The stream starts at exactly the replica's durable LSN + 1 and has no gaps:
//    next LSN - 1 == the last LSN sent.
// 3. acked applied <= acked durable <= sent-through, all non-decreasing; an ack breaking this
//    is refused as REPL-PROTOCOL.
// 4. sent-through - acked durable <= inFlightLSNMax.
// 5. A replica whose WAL is not a prefix of the primary's history (REPL-DIVERGED), or whose
//    epoch history is not a prefix of the primary's (REPL-HISTORY-MISMATCH), is never streamed
//    to; one whose next LSN is no longer retained is told `mustReseed` and never streamed to.
// 6. A replica at a higher epoch is never streamed to; the primary is told (`higherEpochSeen`)
//    so that it stops accepting writes (it is stale: issue 6).

import AeroCore

/// The primary's facts that a session decision needs.
public struct PrimaryView: Sendable, Equatable {
    public var nodeID: NodeID
    public var epoch: Epoch
    public var durableLSN: LSN
    /// The first LSN still in the primary's WAL; records before it were truncated after a
    /// checkpoint. `durableLSN + 1` when the WAL holds no record.
    public var oldestRetainedLSN: LSN
    /// The checkpoint a replica that needs truncated WAL is re-seeded from.
    public var checkpointLSN: LSN
    public var history: [EpochHistoryEntry]

    public init(nodeID: NodeID, epoch: Epoch, durableLSN: LSN, oldestRetainedLSN: LSN, checkpointLSN: LSN,
                history: [EpochHistoryEntry]) {
        precondition(oldestRetainedLSN.rawValue >= 1 && oldestRetainedLSN <= durableLSN.next,
            "oldest retained LSN \(oldestRetainedLSN) outside 1...\(durableLSN.next)")
        precondition(checkpointLSN.next >= oldestRetainedLSN,
            "checkpoint \(checkpointLSN) leaves a gap before the oldest retained LSN \(oldestRetainedLSN)")
        self.nodeID = nodeID
        self.epoch = epoch
        self.durableLSN = durableLSN
        self.oldestRetainedLSN = oldestRetainedLSN
        self.checkpointLSN = checkpointLSN
        self.history = history
    }

    /// The epoch the record at `lsn` was written in, per the history (nil before the first
    /// entry). When epochs wrote no record, several entries share a start: the last one wins.
    public func epoch(at lsn: LSN) -> Epoch? {
        history.last(where: { $0.startLSN <= lsn })?.epoch
    }

    var hello: Hello {
        Hello(nodeID: nodeID, epoch: epoch, lastDurableLSN: durableLSN,
              lastDurableEpoch: durableLSN == .zero ? .zero : (epoch(at: durableLSN) ?? .zero),
              history: history)
    }
}

public enum PrimarySessionEnd: Hashable, Sendable {
    case connectionClosed
    case refusedPeer(Refuse)
    case refusedByPeer(Refuse)
    case mustReseed(MustReseed)
}

public struct PrimaryReplicaSession: Sendable {
    /// LSNs sent and not yet acknowledged durable, at most. 64k records of the WAL's bounded
    /// size keep a slow replica's backlog in the socket and the primary's read-ahead bounded.
    public static let inFlightLSNMaxDefault: UInt64 = 65_536

    public enum State: Hashable, Sendable {
        case awaitingHello
        case awaitingStreamFrom(replica: NodeID, fromLSN: LSN)
        case streaming(replica: NodeID)
        case closed(PrimarySessionEnd)
    }

    public enum Action: Hashable, Sendable {
        case send(PeerMessage)
        /// Read records `from...through` of the WAL and send them as `records` batches (split by
        /// the WireProtocol batch limits), in order.
        case sendRecords(from: LSN, through: LSN)
        /// The replica's acknowledged position advanced (feed the commit quorum and lag metrics).
        case replicaProgress(NodeID, durableLSN: LSN, appliedLSN: LSN)
        /// A peer is at a higher epoch than this primary: this node must stop accepting writes.
        case higherEpochSeen(Epoch, from: NodeID)
        case close
    }

    public let members: Set<NodeID>
    public let inFlightLSNMax: UInt64
    public private(set) var state: State = .awaitingHello
    public private(set) var nextLSN: LSN = .zero
    public private(set) var ackedDurableLSN: LSN = .zero
    public private(set) var ackedAppliedLSN: LSN = .zero
    /// The primary's durable LSN as last reported (records are sent up to it).
    public private(set) var primaryDurableLSN: LSN = .zero

    /// `members`: the node ids allowed to replicate from this primary.
    public init(members: Set<NodeID>, inFlightLSNMax: UInt64 = PrimaryReplicaSession.inFlightLSNMaxDefault) {
        precondition(inFlightLSNMax >= 1, "the in-flight window must hold at least one LSN")
        self.members = members
        self.inFlightLSNMax = inFlightLSNMax
    }

    /// The last LSN sent (LSN.zero before streaming).
    public var sentThroughLSN: LSN { nextLSN == .zero ? .zero : LSN(nextLSN.rawValue - 1) }

    // MARK: events

    public mutating func received(_ message: PeerMessage, view: PrimaryView) -> [Action] {
        defer { checkInvariants() }
        if case .refuse(let refuse) = message {
            if case .closed = state { preconditionFailure("received refuse in state \(state)") }
            state = .closed(.refusedByPeer(refuse))
            return [.close]
        }
        switch state {
        case .closed:
            preconditionFailure("received \(message.kind) in state \(state)")
        case .awaitingHello:
            guard case .hello(let hello) = message else {
                return refusePeer(RuleID.replProtocol.rawValue, "expected hello, received \(message.kind)")
            }
            return receivedHello(hello, view: view)
        case .awaitingStreamFrom(let replica, let fromLSN):
            guard case .streamFrom(let request) = message else {
                return refusePeer(RuleID.replProtocol.rawValue, "expected streamFrom, received \(message.kind)")
            }
            guard request.fromLSN == fromLSN else {
                return refusePeer(RuleID.replProtocol.rawValue,
                    "\(replica) asked to stream from \(request.fromLSN), but its hello said durable through \(fromLSN.rawValue - 1)")
            }
            state = .streaming(replica: replica)
            nextLSN = fromLSN
            ackedDurableLSN = LSN(fromLSN.rawValue - 1)
            ackedAppliedLSN = .zero
            return pump(durable: view.durableLSN)
        case .streaming(let replica):
            guard case .ack(let ack) = message else {
                return refusePeer(RuleID.replProtocol.rawValue, "expected ack, received \(message.kind)")
            }
            return receivedAck(ack, replica: replica, view: view)
        }
    }

    /// The primary's WAL is durable through `lsn`: send what the window allows.
    public mutating func localDurable(_ lsn: LSN) -> [Action] {
        precondition(lsn >= primaryDurableLSN, "primary durable LSN went back from \(primaryDurableLSN) to \(lsn)")
        defer { checkInvariants() }
        switch state {
        case .streaming: return pump(durable: lsn)
        case .awaitingHello, .awaitingStreamFrom, .closed:
            primaryDurableLSN = lsn
            return []
        }
    }

    /// The heartbeat interval elapsed.
    public func heartbeatDue(epoch: Epoch, ackedLSN: LSN, durableLSN: LSN) -> [Action] {
        guard case .streaming = state else { return [] }
        return [.send(.heartbeat(Heartbeat(primaryEpoch: epoch, primaryAckedLSN: ackedLSN, primaryDurableLSN: durableLSN)))]
    }

    public mutating func connectionClosed() {
        if case .closed = state { return }
        state = .closed(.connectionClosed)
    }

    // MARK: handshake

    private mutating func receivedHello(_ hello: Hello, view: PrimaryView) -> [Action] {
        primaryDurableLSN = max(primaryDurableLSN, view.durableLSN)
        let replica = hello.nodeID
        guard replica != view.nodeID, members.contains(replica) else {
            return refusePeer(RuleID.replUnknownPeer.rawValue,
                "\(replica) is not a configured replica of \(view.nodeID)")
        }
        if hello.epoch > view.epoch {
            let refusal = refusePeer(RuleID.replStaleEpoch.rawValue,
                "this primary \(view.nodeID) is at epoch \(view.epoch), below \(replica)'s epoch \(hello.epoch); "
                    + "it stops accepting writes")
            return [.higherEpochSeen(hello.epoch, from: replica)] + refusal
        }
        let replicaLast = hello.lastDurableLSN
        if replicaLast > view.durableLSN {
            return refusePeer(RuleID.replDiverged.rawValue,
                "\(replica) is durable through \(replicaLast), past this primary's durable LSN \(view.durableLSN); "
                    + "its extra records are not in the primary's history and it needs an explicit reseed")
        }
        if replicaLast > .zero {
            let primaryEpochThere = view.epoch(at: replicaLast)
            guard primaryEpochThere == hello.lastDurableEpoch else {
                let there = primaryEpochThere.map { "epoch \($0)" } ?? "no epoch"
                return refusePeer(RuleID.replDiverged.rawValue,
                    "\(replica)'s record \(replicaLast) is of epoch \(hello.lastDurableEpoch), but the primary's "
                        + "history puts \(there) there; it needs an explicit reseed")
            }
        }
        guard view.history.starts(with: hello.history) else {
            return refusePeer(RuleID.replHistoryMismatch.rawValue,
                "\(replica)'s epoch history \(ReplicaSession.describe(hello.history)) is not a prefix of the primary's "
                    + "\(ReplicaSession.describe(view.history))")
        }
        if replicaLast.next < view.oldestRetainedLSN {
            let reseed = MustReseed(
                reason: "\(replica) needs LSN \(replicaLast.next), but the primary's WAL starts at "
                    + "\(view.oldestRetainedLSN); re-seed from checkpoint \(view.checkpointLSN)",
                checkpointLSN: view.checkpointLSN)
            state = .closed(.mustReseed(reseed))
            return [.send(.mustReseed(reseed)), .close]
        }
        state = .awaitingStreamFrom(replica: replica, fromLSN: replicaLast.next)
        return [.send(.hello(view.hello))]
    }

    // MARK: streaming

    private mutating func receivedAck(_ ack: Ack, replica: NodeID, view: PrimaryView) -> [Action] {
        guard ack.appliedLSN <= ack.durableLSN,
            ack.durableLSN >= ackedDurableLSN, ack.appliedLSN >= ackedAppliedLSN,
            ack.durableLSN <= sentThroughLSN
        else {
            return refusePeer(RuleID.replProtocol.rawValue,
                "\(replica) acknowledged durable \(ack.durableLSN) applied \(ack.appliedLSN); "
                    + "previous durable \(ackedDurableLSN) applied \(ackedAppliedLSN), sent through \(sentThroughLSN)")
        }
        var actions: [Action] = []
        if ack.durableLSN > ackedDurableLSN || ack.appliedLSN > ackedAppliedLSN {
            ackedDurableLSN = ack.durableLSN
            ackedAppliedLSN = ack.appliedLSN
            actions.append(.replicaProgress(replica, durableLSN: ack.durableLSN, appliedLSN: ack.appliedLSN))
        }
        return actions + pump(durable: max(view.durableLSN, primaryDurableLSN))
    }

    /// Sends what is durable locally and fits in the window.
    private mutating func pump(durable: LSN) -> [Action] {
        primaryDurableLSN = max(primaryDurableLSN, durable)
        let windowEnd = ackedDurableLSN.rawValue + inFlightLSNMax
        let through = min(primaryDurableLSN.rawValue, windowEnd)
        guard through >= nextLSN.rawValue else { return [] }
        let from = nextLSN
        nextLSN = LSN(through + 1)
        return [.sendRecords(from: from, through: LSN(through))]
    }

    private mutating func refusePeer(_ rule: String, _ message: String) -> [Action] {
        let refuse = Refuse(ruleID: rule, message: message)
        state = .closed(.refusedPeer(refuse))
        return [.send(.refuse(refuse)), .close]
    }

    // MARK: invariants

    func checkInvariants() {
        guard case .streaming = state else { return }
        precondition(sentThroughLSN <= primaryDurableLSN, "invariant 1: sent \(sentThroughLSN) past durable \(primaryDurableLSN)")
        precondition(ackedAppliedLSN <= ackedDurableLSN && ackedDurableLSN <= sentThroughLSN,
            "invariant 3: applied \(ackedAppliedLSN) durable \(ackedDurableLSN) sent \(sentThroughLSN)")
        precondition(sentThroughLSN.rawValue - ackedDurableLSN.rawValue <= inFlightLSNMax,
            "invariant 4: \(sentThroughLSN.rawValue - ackedDurableLSN.rawValue) LSNs in flight")
    }
}
