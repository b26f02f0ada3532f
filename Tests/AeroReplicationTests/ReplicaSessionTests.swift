import AeroCore
import AeroReplication
import AeroStorage
import Testing

/// The replica side, driven through every (state, event) pair. States: idle, awaitingHello,
/// awaitingEpochPersist, streaming, closed. Events: connected, received(each of the 11 message
/// kinds), epochPersisted, localDurable, localApplied, connectionClosed. Pairs that are
/// programmer errors are exit tests (the process must stop on the precondition).
@Suite("Replica session state machine")
struct ReplicaSessionTests {
    /// The replica's history: epoch 1 led by n0 from LSN 1, epoch 2 by n1 from LSN 5.
    static let history = [
        EpochHistoryEntry(epoch: Epoch(1), primary: "n0", startLSN: LSN(1)),
        EpochHistoryEntry(epoch: Epoch(2), primary: "n1", startLSN: LSN(5)),
    ]

    static let position = ReplicaPosition(
        nodeID: "n2", epoch: Epoch(2), durableLSN: LSN(10), durableRecordEpoch: Epoch(2), appliedLSN: LSN(8),
        history: history)

    /// A primary's history at `epoch`: the replica's up to epoch 2, then epochs led by `node`.
    static func historyAt(_ epoch: UInt64, node: NodeID = "n1") -> [EpochHistoryEntry] {
        let base = history.filter { $0.epoch.rawValue <= epoch }
        guard epoch > 2 else { return base }
        return base + (3...epoch).map { EpochHistoryEntry(epoch: Epoch($0), primary: node, startLSN: LSN(11 + $0)) }
    }

    static func primaryHello(epoch: UInt64 = 2, node: NodeID = "n1", history: [EpochHistoryEntry]? = nil) -> PeerMessage {
        .hello(Hello(nodeID: node, epoch: Epoch(epoch), lastDurableLSN: LSN(20), lastDurableEpoch: Epoch(epoch),
                     history: history ?? historyAt(epoch, node: node)))
    }

    static func idle() -> ReplicaSession { ReplicaSession(position: position, expectedPrimary: "n1") }

    static func awaitingHello() -> ReplicaSession {
        var s = idle()
        _ = s.connected()
        return s
    }

    static func awaitingEpochPersist() -> ReplicaSession {
        var s = awaitingHello()
        let actions = s.received(primaryHello(epoch: 3))
        #expect(actions == [.persistAuthority(epoch: Epoch(3), primary: "n1", history: historyAt(3))])
        return s
    }

    static func streaming() -> ReplicaSession {
        var s = awaitingHello()
        _ = s.received(primaryHello())
        #expect(s.state == .streaming(primary: "n1"))
        return s
    }

    static func closed() -> ReplicaSession {
        var s = streaming()
        s.connectionClosed()
        return s
    }

    static func refused(_ actions: [ReplicaSession.Action], _ rule: String) -> Bool {
        guard actions.count == 2, case .send(.refuse(let refuse)) = actions[0], actions[1] == .close else { return false }
        return refuse.ruleID == rule
    }

    static func refusedState(_ s: ReplicaSession, _ rule: String) -> Bool {
        guard case .closed(.refusedPeer(let refuse)) = s.state else { return false }
        return refuse.ruleID == rule
    }

    // MARK: idle

    @Test("idle + connected: sends hello with the replica's position")
    func idleConnected() {
        var s = Self.idle()
        let actions = s.connected()
        #expect(actions == [.send(.hello(Hello(nodeID: "n2", epoch: Epoch(2), lastDurableLSN: LSN(10), lastDurableEpoch: Epoch(2), history: Self.history)))])
        #expect(s.state == .awaitingHello)
    }

    @Test("idle + received / epochPersisted / localDurable / localApplied: programmer errors")
    func idleIllegal() async {
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.idle(); _ = s.received(ReplicaSessionTests.primaryHello()) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.idle(); _ = s.epochPersisted() }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.idle(); _ = s.localDurable(LSN(10)) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.idle(); _ = s.localApplied(LSN(8)) }
    }

    @Test("idle + connectionClosed: closed")
    func idleClosed() {
        var s = Self.idle()
        s.connectionClosed()
        #expect(s.state == .closed(.connectionClosed))
    }

    // MARK: awaitingHello

    @Test("awaitingHello + hello of the same epoch: stream from durable + 1")
    func helloSameEpoch() {
        var s = Self.awaitingHello()
        #expect(s.received(Self.primaryHello()) == [.send(.streamFrom(StreamFrom(fromLSN: LSN(11))))])
        #expect(s.state == .streaming(primary: "n1"))
    }

    @Test("awaitingHello + hello of a higher epoch: persist the epoch and history first")
    func helloHigherEpoch() {
        var s = Self.awaitingHello()
        #expect(s.received(Self.primaryHello(epoch: 5)) == [.persistAuthority(epoch: Epoch(5), primary: "n1", history: Self.historyAt(5))])
        #expect(s.epoch == Epoch(2) && s.history == Self.history, "adopted only once durable")
    }

    @Test("awaitingHello + a primary whose history does not extend ours: REPL-HISTORY-MISMATCH")
    func helloHistoryMismatch() {
        // Epoch 2 was led by n1 from LSN 5 here; the peer says n1 led it from LSN 6.
        var s = Self.awaitingHello()
        let other = [Self.history[0], EpochHistoryEntry(epoch: Epoch(2), primary: "n1", startLSN: LSN(6))]
        #expect(Self.refused(s.received(Self.primaryHello(history: other)), RuleID.replHistoryMismatch.rawValue))
        // A primary at a higher epoch that never knew our epoch 2.
        var t = Self.awaitingHello()
        let skipped = [Self.history[0], EpochHistoryEntry(epoch: Epoch(3), primary: "n1", startLSN: LSN(5))]
        #expect(Self.refused(t.received(Self.primaryHello(epoch: 3, history: skipped)), RuleID.replHistoryMismatch.rawValue))
    }

    @Test("awaitingHello + a hello whose history is not a primary's: REPL-PROTOCOL", arguments: [
        [EpochHistoryEntry](),  // empty
        [EpochHistoryEntry(epoch: Epoch(1), primary: "n0", startLSN: LSN(1)), EpochHistoryEntry(epoch: Epoch(2), primary: "n9", startLSN: LSN(5))],  // not led by the sender
        [EpochHistoryEntry(epoch: Epoch(2), primary: "n1", startLSN: LSN(5)), EpochHistoryEntry(epoch: Epoch(2), primary: "n1", startLSN: LSN(6))],  // epochs not increasing
        [EpochHistoryEntry(epoch: Epoch(1), primary: "n0", startLSN: LSN(9)), EpochHistoryEntry(epoch: Epoch(2), primary: "n1", startLSN: LSN(5))],  // starts decrease
    ])
    func helloMalformedHistory(history: [EpochHistoryEntry]) {
        var s = Self.awaitingHello()
        #expect(Self.refused(s.received(Self.primaryHello(history: history)), RuleID.replProtocol.rawValue))
    }

    @Test("awaitingHello + hello of a lower epoch: REPL-STALE-EPOCH")
    func helloLowerEpoch() {
        var s = Self.awaitingHello()
        #expect(Self.refused(s.received(Self.primaryHello(epoch: 1)), RuleID.replStaleEpoch.rawValue))
        #expect(Self.refusedState(s, RuleID.replStaleEpoch.rawValue))
    }

    @Test("awaitingHello + hello from another node: REPL-WRONG-PRIMARY")
    func helloWrongNode() {
        var s = Self.awaitingHello()
        #expect(Self.refused(s.received(Self.primaryHello(node: "n3")), RuleID.replWrongPrimary.rawValue))
    }

    @Test("awaitingHello + refuse / mustReseed / follow")
    func handshakeEndings() {
        let refuse = Refuse(ruleID: RuleID.replDiverged.rawValue, message: "x")
        var a = Self.awaitingHello()
        #expect(a.received(.refuse(refuse)) == [.close])
        #expect(a.state == .closed(.refusedByPeer(refuse)))

        let reseed = MustReseed(reason: "gone", checkpointLSN: LSN(100))
        var b = Self.awaitingHello()
        #expect(b.received(.mustReseed(reseed)) == [.reseed(reseed), .close])
        #expect(b.state == .closed(.mustReseed(reseed)))
    }

    @Test("awaitingHello + any other message: REPL-PROTOCOL", arguments: [
        PeerMessage.streamFrom(StreamFrom(fromLSN: LSN(1))), .records(RecordBatch(senderEpoch: Epoch(2), records: [Fixture.record(11, epoch: 2)])),
        .ack(Ack(durableLSN: .zero, appliedLSN: .zero)), .heartbeat(Heartbeat(primaryEpoch: Epoch(2), primaryAckedLSN: .zero, primaryDurableLSN: .zero)),
    ])
    func handshakeProtocol(message: PeerMessage) {
        var s = Self.awaitingHello()
        #expect(Self.refused(s.received(message), RuleID.replProtocol.rawValue))
    }

    @Test("awaitingHello + connected / epochPersisted / localDurable: programmer errors")
    func handshakeIllegal() async {
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.awaitingHello(); _ = s.connected() }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.awaitingHello(); _ = s.epochPersisted() }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.awaitingHello(); _ = s.localDurable(LSN(10)) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.awaitingHello(); _ = s.localApplied(LSN(8)) }
    }

    // MARK: awaitingEpochPersist

    @Test("awaitingEpochPersist + epochPersisted: adopt the epoch, stream from durable + 1")
    func persisted() {
        var s = Self.awaitingEpochPersist()
        #expect(s.epochPersisted() == [.send(.streamFrom(StreamFrom(fromLSN: LSN(11))))])
        #expect(s.epoch == Epoch(3) && s.history == Self.historyAt(3))
        #expect(s.state == .streaming(primary: "n1"))
    }

    @Test("awaitingEpochPersist + refuse: closed, refused by the peer; anything else: REPL-PROTOCOL")
    func persistWaitMessages() {
        var a = Self.awaitingEpochPersist()
        let refuse = Refuse(ruleID: "X", message: "y")
        #expect(a.received(.refuse(refuse)) == [.close])
        #expect(a.state == .closed(.refusedByPeer(refuse)))
        for message in Fixture.everyMessage where message.kind != .refuse {
            var s = Self.awaitingEpochPersist()
            #expect(Self.refused(s.received(message), RuleID.replProtocol.rawValue), "\(message.kind)")
        }
    }

    @Test("awaitingEpochPersist + connectionClosed, then epochPersisted: closed, nothing sent")
    func persistAfterClose() {
        var s = Self.awaitingEpochPersist()
        s.connectionClosed()
        #expect(s.epochPersisted() == [])
        #expect(s.state == .closed(.connectionClosed))
    }

    @Test("awaitingEpochPersist + connected / localDurable: programmer errors")
    func persistIllegal() async {
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.awaitingEpochPersist(); _ = s.connected() }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.awaitingEpochPersist(); _ = s.localDurable(LSN(10)) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.awaitingEpochPersist(); _ = s.localApplied(LSN(8)) }
    }

    // MARK: streaming

    @Test("streaming + records continuing at durable + 1: append; durable and applied progress ack")
    func recordsAppendAndAck() {
        var s = Self.streaming()
        let records = [Fixture.record(11, epoch: 2), Fixture.record(12, epoch: 2)]
        #expect(s.received(.records(RecordBatch(senderEpoch: Epoch(2), records: records))) == [.append(records)])
        #expect(s.appendedLSN == LSN(12))
        #expect(s.localDurable(LSN(12)) == [.send(.ack(Ack(durableLSN: LSN(12), appliedLSN: LSN(8))))])
        #expect(s.localDurable(LSN(12)) == [], "no ack without progress")
        #expect(s.localApplied(LSN(12)) == [.send(.ack(Ack(durableLSN: LSN(12), appliedLSN: LSN(12))))])
        #expect(s.localApplied(LSN(12)) == [])
        // The next batch must continue at 13.
        #expect(s.received(.records(RecordBatch(senderEpoch: Epoch(2), records: [Fixture.record(13, epoch: 2)]))) == [.append([Fixture.record(13, epoch: 2)])])
    }

    @Test("streaming + one flush (durable and applied together): one ack carrying both; none without progress")
    func flushAcksOnce() {
        var s = Self.streaming()
        let records = [Fixture.record(11, epoch: 2), Fixture.record(12, epoch: 2), Fixture.record(13, epoch: 2)]
        #expect(s.received(.records(RecordBatch(senderEpoch: Epoch(2), records: Array(records[0..<2])))) == [.append(Array(records[0..<2]))])
        #expect(s.received(.records(RecordBatch(senderEpoch: Epoch(2), records: [records[2]]))) == [.append([records[2]])])
        #expect(s.localDurableAndApplied(LSN(13)) == [.send(.ack(Ack(durableLSN: LSN(13), appliedLSN: LSN(13))))])
        #expect(s.durableLSN == LSN(13) && s.appliedLSN == LSN(13))
        #expect(s.localDurableAndApplied(LSN(13)) == [], "no ack without progress")
    }

    @Test("localDurableAndApplied past the appended LSN or backwards: programmer errors")
    func flushAckOutOfRange() async {
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.streaming(); _ = s.localDurableAndApplied(LSN(11)) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.streaming(); _ = s.localDurableAndApplied(LSN(7)) }
    }

    @Test("streaming + records with a gap, a repeat or a disorder: REPL-LSN-GAP", arguments: [
        [UInt64(12)], [10], [11, 13], [11, 11],
    ])
    func recordsGap(lsns: [UInt64]) {
        var s = Self.streaming()
        let batch = RecordBatch(senderEpoch: Epoch(2), records: lsns.map { Fixture.record($0, epoch: 2) })
        #expect(Self.refused(s.received(.records(batch)), RuleID.replLsnGap.rawValue))
        #expect(s.appendedLSN == LSN(10), "nothing of a refused batch is appended")
    }

    @Test("streaming + records whose epochs go back, are zero, or exceed the sender's: REPL-EPOCH-REGRESSION")
    func recordsEpochLineage() {
        // The last durable record is of epoch 2: a record of epoch 1 after it goes back.
        var a = Self.streaming()
        #expect(Self.refused(a.received(.records(RecordBatch(senderEpoch: Epoch(2), records: [Fixture.record(11, epoch: 1)]))), RuleID.replEpochRegression.rawValue))
        var b = Self.streaming()
        #expect(Self.refused(b.received(.records(RecordBatch(senderEpoch: Epoch(2), records: [Fixture.record(11, epoch: 3)]))), RuleID.replEpochRegression.rawValue))
        var c = Self.streaming()
        #expect(Self.refused(c.received(.records(RecordBatch(senderEpoch: Epoch(2), records: [Fixture.record(11, epoch: 0)]))), RuleID.replEpochRegression.rawValue))
    }

    @Test("streaming + records or heartbeat from a lower epoch: REPL-STALE-EPOCH; a higher one: REPL-PROTOCOL")
    func streamingSenderEpoch() {
        var a = Self.streaming()
        #expect(Self.refused(a.received(.records(RecordBatch(senderEpoch: Epoch(1), records: [Fixture.record(11, epoch: 1)]))), RuleID.replStaleEpoch.rawValue))
        var b = Self.streaming()
        #expect(Self.refused(b.received(.heartbeat(Heartbeat(primaryEpoch: Epoch(1), primaryAckedLSN: LSN(1), primaryDurableLSN: LSN(1)))), RuleID.replStaleEpoch.rawValue))
        var c = Self.streaming()
        #expect(Self.refused(c.received(.heartbeat(Heartbeat(primaryEpoch: Epoch(3), primaryAckedLSN: LSN(1), primaryDurableLSN: LSN(1)))), RuleID.replProtocol.rawValue))
    }

    @Test("streaming + an empty batch: REPL-PROTOCOL")
    func emptyBatch() {
        var s = Self.streaming()
        #expect(Self.refused(s.received(.records(RecordBatch(senderEpoch: Epoch(2), records: []))), RuleID.replProtocol.rawValue))
    }

    @Test("streaming + heartbeat: report the primary's progress and ack")
    func heartbeat() {
        var s = Self.streaming()
        #expect(s.received(.heartbeat(Heartbeat(primaryEpoch: Epoch(2), primaryAckedLSN: LSN(15), primaryDurableLSN: LSN(20)))) == [
            .primaryProgress(ackedLSN: LSN(15), durableLSN: LSN(20)),
            .send(.ack(Ack(durableLSN: LSN(10), appliedLSN: LSN(8)))),
        ])
        #expect(s.state == .streaming(primary: "n1"))
    }

    @Test("streaming + refuse / mustReseed end the session")
    func streamingEndings() {
        let refuse = Refuse(ruleID: "R", message: "m")
        var a = Self.streaming()
        #expect(a.received(.refuse(refuse)) == [.close])
        #expect(a.state == .closed(.refusedByPeer(refuse)))
        let reseed = MustReseed(reason: "r", checkpointLSN: LSN(50))
        var b = Self.streaming()
        #expect(b.received(.mustReseed(reseed)) == [.reseed(reseed), .close])
        #expect(b.state == .closed(.mustReseed(reseed)))
    }

    @Test("streaming + hello / streamFrom / ack: REPL-PROTOCOL", arguments: [
        PeerMessage.Kind.hello, .streamFrom, .ack,
    ])
    func streamingProtocol(kind: PeerMessage.Kind) throws {
        let message = try #require(Fixture.everyMessage.first { $0.kind == kind })
        var s = Self.streaming()
        #expect(Self.refused(s.received(message), RuleID.replProtocol.rawValue))
    }

    @Test("streaming + connectionClosed: later durable/applied progress updates the position, sends nothing")
    func streamingClosed() {
        var s = Self.streaming()
        _ = s.received(.records(RecordBatch(senderEpoch: Epoch(2), records: [Fixture.record(11, epoch: 2)])))
        s.connectionClosed()
        #expect(s.localDurable(LSN(11)) == [])
        #expect(s.localApplied(LSN(11)) == [])
        #expect(s.durableLSN == LSN(11) && s.appliedLSN == LSN(11))
    }

    @Test("streaming + connected / epochPersisted / durable beyond appended / applied beyond durable: programmer errors")
    func streamingIllegal() async {
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.streaming(); _ = s.connected() }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.streaming(); _ = s.epochPersisted() }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.streaming(); _ = s.localDurable(LSN(11)) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.streaming(); _ = s.localApplied(LSN(11)) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.streaming(); _ = s.localDurable(LSN(9)) }
    }

    // MARK: closed

    @Test("closed + connectionClosed: stays closed with its first reason")
    func closedClosed() {
        var s = Self.awaitingHello()
        _ = s.received(Self.primaryHello(epoch: 1))
        s.connectionClosed()
        #expect(Self.refusedState(s, RuleID.replStaleEpoch.rawValue))
    }

    @Test("closed + received / connected: programmer errors")
    func closedIllegal() async {
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.closed(); _ = s.received(ReplicaSessionTests.primaryHello()) }
        await #expect(processExitsWith: .failure) { var s = ReplicaSessionTests.closed(); _ = s.connected() }
    }

    // MARK: a whole session

    @Test("a fresh replica (empty WAL, epoch 0) follows a primary from LSN 1")
    func freshReplica() {
        let fresh = ReplicaPosition(nodeID: "n2", epoch: .zero, durableLSN: .zero, durableRecordEpoch: .zero, appliedLSN: .zero, history: [])
        var s = ReplicaSession(position: fresh, expectedPrimary: "n1")
        _ = s.connected()
        let history = [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1))]
        #expect(s.received(Self.primaryHello(epoch: 1, history: history)) == [.persistAuthority(epoch: Epoch(1), primary: "n1", history: history)])
        #expect(s.epochPersisted() == [.send(.streamFrom(StreamFrom(fromLSN: LSN(1))))])
        let records = (1...3).map { Fixture.record(UInt64($0), epoch: 1) }
        #expect(s.received(.records(RecordBatch(senderEpoch: Epoch(1), records: records))) == [.append(records)])
        #expect(s.localDurable(LSN(3)) == [.send(.ack(Ack(durableLSN: LSN(3), appliedLSN: .zero)))])
    }
}
