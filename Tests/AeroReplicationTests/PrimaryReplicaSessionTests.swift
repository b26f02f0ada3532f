import AeroCore
import AeroReplication
import AeroStorage
import Testing

/// The primary side, driven through every (state, event) pair. States: awaitingHello,
/// awaitingStreamFrom, streaming, closed. Events: received(each message kind), localDurable,
/// heartbeatDue, connectionClosed.
@Suite("Primary per-replica session state machine")
struct PrimaryReplicaSessionTests {
    /// Primary n1 at epoch 3; epoch 1 was n1 from LSN 1, epoch 2 was n3 from LSN 11, epoch 3 is
    /// n1 again from LSN 21. Durable through 40; WAL retained from 5; checkpoint at 4.
    static let history = [
        EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1)),
        EpochHistoryEntry(epoch: Epoch(2), primary: "n3", startLSN: LSN(11)),
        EpochHistoryEntry(epoch: Epoch(3), primary: "n1", startLSN: LSN(21)),
    ]

    static func view(durable: UInt64 = 40, oldest: UInt64 = 5, checkpoint: UInt64 = 4) -> PrimaryView {
        PrimaryView(nodeID: "n1", epoch: Epoch(3), durableLSN: LSN(durable), oldestRetainedLSN: LSN(oldest),
                    checkpointLSN: LSN(checkpoint), history: history)
    }

    /// A replica's hello; its history defaults to the primary's up to the replica's epoch.
    static func replicaHello(node: NodeID = "n2", epoch: UInt64 = 3, durable: UInt64 = 30, recordEpoch: UInt64 = 3,
                             history replicaHistory: [EpochHistoryEntry]? = nil) -> PeerMessage {
        .hello(Hello(nodeID: node, epoch: Epoch(epoch), lastDurableLSN: LSN(durable), lastDurableEpoch: Epoch(recordEpoch),
                     history: replicaHistory ?? history.filter { $0.epoch.rawValue <= epoch }))
    }

    static func fresh(window: UInt64 = 100) -> PrimaryReplicaSession {
        PrimaryReplicaSession(members: ["n1", "n2", "n3"], inFlightLSNMax: window)
    }

    static func awaitingStreamFrom(window: UInt64 = 100) -> PrimaryReplicaSession {
        var s = fresh(window: window)
        let actions = s.received(replicaHello(), view: view())
        #expect(actions == [.send(.hello(Hello(nodeID: "n1", epoch: Epoch(3), lastDurableLSN: LSN(40), lastDurableEpoch: Epoch(3), history: history)))])
        return s
    }

    static func streaming(window: UInt64 = 100) -> PrimaryReplicaSession {
        var s = awaitingStreamFrom(window: window)
        _ = s.received(.streamFrom(StreamFrom(fromLSN: LSN(31))), view: view())
        return s
    }

    static func refused(_ actions: [PrimaryReplicaSession.Action], _ rule: String) -> Bool {
        guard let last = actions.last, last == .close, actions.count >= 2,
              case .send(.refuse(let refuse)) = actions[actions.count - 2] else { return false }
        return refuse.ruleID == rule
    }

    // MARK: awaitingHello

    @Test("hello from a replica on the primary's history: answer with the primary's hello")
    func helloAccepted() {
        let s = Self.awaitingStreamFrom()
        #expect(s.state == .awaitingStreamFrom(replica: "n2", fromLSN: LSN(31)))
    }

    @Test("hello from a replica of an older epoch whose WAL is a prefix is accepted (catching up)")
    func helloOlderEpochPrefix() {
        var s = Self.fresh()
        // n2 stopped in epoch 2 at LSN 15 (n3's records): on the history, so it may follow.
        let actions = s.received(Self.replicaHello(epoch: 2, durable: 15, recordEpoch: 2), view: Self.view())
        #expect(actions.count == 1)
        #expect(s.state == .awaitingStreamFrom(replica: "n2", fromLSN: LSN(16)))
        // An empty replica too.
        var e = Self.fresh()
        _ = e.received(Self.replicaHello(epoch: 0, durable: 0, recordEpoch: 0), view: Self.view(oldest: 1, checkpoint: 0))
        #expect(e.state == .awaitingStreamFrom(replica: "n2", fromLSN: LSN(1)))
    }

    @Test("hello from an unknown node or the primary itself: REPL-UNKNOWN-PEER", arguments: [NodeID("n9"), NodeID("n1")])
    func helloUnknown(node: NodeID) {
        var s = Self.fresh()
        #expect(Self.refused(s.received(Self.replicaHello(node: node), view: Self.view()), RuleID.replUnknownPeer.rawValue))
    }

    @Test("hello from a higher epoch: the primary learns it is stale, refuses REPL-STALE-EPOCH")
    func helloHigherEpoch() {
        var s = Self.fresh()
        let actions = s.received(Self.replicaHello(epoch: 4), view: Self.view())
        #expect(actions.first == .higherEpochSeen(Epoch(4), from: "n2"))
        #expect(Self.refused(actions, RuleID.replStaleEpoch.rawValue))
    }

    @Test("hello durable past the primary, or with its last record in another epoch: REPL-DIVERGED")
    func helloDiverged() {
        var a = Self.fresh()
        #expect(Self.refused(a.received(Self.replicaHello(durable: 41), view: Self.view()), RuleID.replDiverged.rawValue))
        // n2 wrote LSN 15 in epoch 1 (an old primary's records past the branch point at 11).
        var b = Self.fresh()
        #expect(Self.refused(b.received(Self.replicaHello(epoch: 1, durable: 15, recordEpoch: 1), view: Self.view()), RuleID.replDiverged.rawValue))
        // LSN 25 was written in epoch 3, not 2.
        var c = Self.fresh()
        #expect(Self.refused(c.received(Self.replicaHello(epoch: 2, durable: 25, recordEpoch: 2), view: Self.view()), RuleID.replDiverged.rawValue))
    }

    @Test("hello with an epoch history that is not a prefix of the primary's: REPL-HISTORY-MISMATCH")
    func helloHistoryMismatch() {
        // Same epoch, epoch 2 remembered as led by n2 instead of n3.
        var s = Self.fresh()
        let other = [Self.history[0], EpochHistoryEntry(epoch: Epoch(2), primary: "n2", startLSN: LSN(11)), Self.history[2]]
        #expect(Self.refused(s.received(Self.replicaHello(history: other), view: Self.view()), RuleID.replHistoryMismatch.rawValue))
        // A lower epoch whose only entry differs.
        var t = Self.fresh()
        let older = [EpochHistoryEntry(epoch: Epoch(1), primary: "n2", startLSN: LSN(1))]
        #expect(Self.refused(t.received(Self.replicaHello(epoch: 1, durable: 5, recordEpoch: 1, history: older), view: Self.view()), RuleID.replHistoryMismatch.rawValue))
    }

    @Test("hello needing WAL older than the oldest retained LSN: mustReseed from the checkpoint")
    func helloMustReseed() {
        var s = Self.fresh()
        let view = Self.view(oldest: 32, checkpoint: 31)
        let actions = s.received(Self.replicaHello(durable: 30), view: view)
        guard actions.count == 2, case .send(.mustReseed(let reseed)) = actions[0], actions[1] == .close else {
            Issue.record("expected mustReseed, got \(actions)")
            return
        }
        #expect(reseed.checkpointLSN == LSN(31))
        #expect(s.state == .closed(.mustReseed(reseed)))
        // Needing exactly the oldest retained LSN is fine.
        var ok = Self.fresh()
        _ = ok.received(Self.replicaHello(durable: 31), view: view)
        #expect(ok.state == .awaitingStreamFrom(replica: "n2", fromLSN: LSN(32)))
    }

    @Test("awaitingHello + any message but hello and refuse: REPL-PROTOCOL")
    func awaitingHelloProtocol() {
        for message in Fixture.everyMessage where message.kind != .hello && message.kind != .refuse {
            var s = Self.fresh()
            #expect(Self.refused(s.received(message, view: Self.view()), RuleID.replProtocol.rawValue), "\(message.kind)")
        }
    }

    @Test("refuse from the replica in any open state: closed, refused by the peer")
    func refuseReceived() {
        let refuse = Refuse(ruleID: RuleID.replStaleEpoch.rawValue, message: "m")
        for make in [{ Self.fresh() }, { Self.awaitingStreamFrom() }, { Self.streaming() }] {
            var s = make()
            #expect(s.received(.refuse(refuse), view: Self.view()) == [.close])
            #expect(s.state == .closed(.refusedByPeer(refuse)))
        }
    }

    @Test("localDurable and heartbeatDue before streaming: nothing to do")
    func quietBeforeStreaming() {
        var a = Self.fresh()
        #expect(a.localDurable(LSN(41)) == [])
        #expect(a.heartbeatDue(epoch: Epoch(3), ackedLSN: LSN(40), durableLSN: LSN(41)) == [])
        var b = Self.awaitingStreamFrom()
        #expect(b.localDurable(LSN(41)) == [])
        #expect(b.heartbeatDue(epoch: Epoch(3), ackedLSN: LSN(40), durableLSN: LSN(41)) == [])
    }

    // MARK: awaitingStreamFrom

    @Test("streamFrom at durable + 1: streaming, send what is durable")
    func streamFromAccepted() {
        var s = Self.awaitingStreamFrom()
        #expect(s.received(.streamFrom(StreamFrom(fromLSN: LSN(31))), view: Self.view()) == [.sendRecords(from: LSN(31), through: LSN(40))])
        #expect(s.state == .streaming(replica: "n2"))
        #expect(s.sentThroughLSN == LSN(40))
    }

    @Test("streamFrom at another LSN, or another message: REPL-PROTOCOL")
    func streamFromWrong() {
        var a = Self.awaitingStreamFrom()
        #expect(Self.refused(a.received(.streamFrom(StreamFrom(fromLSN: LSN(30))), view: Self.view()), RuleID.replProtocol.rawValue))
        for message in Fixture.everyMessage where message.kind != .streamFrom && message.kind != .refuse {
            var s = Self.awaitingStreamFrom()
            #expect(Self.refused(s.received(message, view: Self.view()), RuleID.replProtocol.rawValue), "\(message.kind)")
        }
    }

    @Test("a replica already caught up gets nothing until the primary's WAL grows")
    func caughtUp() {
        var s = Self.fresh()
        _ = s.received(Self.replicaHello(durable: 40), view: Self.view())
        #expect(s.received(.streamFrom(StreamFrom(fromLSN: LSN(41))), view: Self.view()) == [])
        #expect(s.localDurable(LSN(43)) == [.sendRecords(from: LSN(41), through: LSN(43))])
    }

    // MARK: streaming

    @Test("streaming + ack: report progress; the window limits what is in flight")
    func windowAndAcks() {
        var s = Self.streaming(window: 10)
        // Window 10 from acked 30: sent 31...40 already; more durable data waits for acks.
        #expect(s.sentThroughLSN == LSN(40))
        #expect(s.localDurable(LSN(60)) == [])
        #expect(s.received(.ack(Ack(durableLSN: LSN(35), appliedLSN: LSN(33))), view: Self.view(durable: 60)) == [
            .replicaProgress("n2", durableLSN: LSN(35), appliedLSN: LSN(33)),
            .sendRecords(from: LSN(41), through: LSN(45)),
        ])
        // A repeated ack changes nothing.
        #expect(s.received(.ack(Ack(durableLSN: LSN(35), appliedLSN: LSN(33))), view: Self.view(durable: 60)) == [])
        #expect(s.ackedDurableLSN == LSN(35) && s.ackedAppliedLSN == LSN(33))
    }

    @Test("streaming + impossible acks: REPL-PROTOCOL", arguments: [
        (UInt64(41), UInt64(30)),  // durable beyond what was sent
        (35, 36),  // applied beyond durable
        (29, 0),  // durable going back
    ])
    func badAcks(durable: UInt64, applied: UInt64) {
        var s = Self.streaming()
        #expect(Self.refused(s.received(.ack(Ack(durableLSN: LSN(durable), appliedLSN: LSN(applied))), view: Self.view()), RuleID.replProtocol.rawValue))
    }

    @Test("streaming + applied going back: REPL-PROTOCOL")
    func appliedBack() {
        var s = Self.streaming()
        _ = s.received(.ack(Ack(durableLSN: LSN(35), appliedLSN: LSN(34))), view: Self.view())
        #expect(Self.refused(s.received(.ack(Ack(durableLSN: LSN(36), appliedLSN: LSN(33))), view: Self.view()), RuleID.replProtocol.rawValue))
    }

    @Test("streaming + any message but ack and refuse: REPL-PROTOCOL")
    func streamingProtocol() {
        for message in Fixture.everyMessage where message.kind != .ack && message.kind != .refuse {
            var s = Self.streaming()
            #expect(Self.refused(s.received(message, view: Self.view()), RuleID.replProtocol.rawValue), "\(message.kind)")
        }
    }

    @Test("streaming + heartbeatDue: sends the primary's epoch and positions")
    func heartbeat() {
        let s = Self.streaming()
        #expect(s.heartbeatDue(epoch: Epoch(3), ackedLSN: LSN(38), durableLSN: LSN(40)) == [
            .send(.heartbeat(Heartbeat(primaryEpoch: Epoch(3), primaryAckedLSN: LSN(38), primaryDurableLSN: LSN(40)))),
        ])
    }

    @Test("streaming + connectionClosed: closed; later localDurable is quiet")
    func streamingClosed() {
        var s = Self.streaming()
        s.connectionClosed()
        #expect(s.state == .closed(.connectionClosed))
        #expect(s.localDurable(LSN(50)) == [])
        #expect(s.heartbeatDue(epoch: Epoch(3), ackedLSN: LSN(40), durableLSN: LSN(50)) == [])
        s.connectionClosed()
        #expect(s.state == .closed(.connectionClosed))
    }

    @Test("closed + received, and localDurable going back: programmer errors")
    func illegal() async {
        await #expect(processExitsWith: .failure) {
            var s = PrimaryReplicaSessionTests.streaming()
            s.connectionClosed()
            _ = s.received(.ack(Ack(durableLSN: LSN(31), appliedLSN: LSN(31))), view: PrimaryReplicaSessionTests.view())
        }
        await #expect(processExitsWith: .failure) {
            var s = PrimaryReplicaSessionTests.streaming()
            _ = s.localDurable(LSN(39))
        }
    }

    @Test("PrimaryView.epoch(at:) picks the last entry starting at or before the LSN")
    func epochAt() {
        let v = Self.view()
        #expect(v.epoch(at: LSN(1)) == Epoch(1))
        #expect(v.epoch(at: LSN(10)) == Epoch(1))
        #expect(v.epoch(at: LSN(11)) == Epoch(2))
        #expect(v.epoch(at: LSN(100)) == Epoch(3))
        let empty = PrimaryView(nodeID: "n1", epoch: Epoch(4), durableLSN: LSN(10), oldestRetainedLSN: LSN(1), checkpointLSN: .zero,
                                history: [EpochHistoryEntry(epoch: Epoch(3), primary: "n2", startLSN: LSN(11)),
                                          EpochHistoryEntry(epoch: Epoch(4), primary: "n1", startLSN: LSN(11))])
        #expect(empty.epoch(at: LSN(11)) == Epoch(4), "epoch 3 wrote nothing")
        #expect(empty.epoch(at: LSN(5)) == nil)
    }
}
