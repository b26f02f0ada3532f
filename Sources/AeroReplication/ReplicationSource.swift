// ReplicationSource.swift — the primary's peer listener: one PrimaryReplicaSession per replica
// connection, driven by SwiftNIO and fed from the storage engine's WAL.
//
// Threading: each connection's session lives in its handler and is touched only on that
// channel's event loop. `walDurable(_:)` and the heartbeat timer hop onto each loop.
//
// Shipping starts at the flush: the source listens to the engine's durable LSN (storage E7,
// `addDurableListener`), so records go out when the flush that made them durable ends, not when
// the first of its committers is resumed; `walDurable` from the commit path is still accepted
// (it feeds the same hop). Hops are coalesced per connection: while one is scheduled, further
// calls only rely on it, and the hop reads the engine's durable LSN when it runs — which is at
// least every LSN announced before it ran, and only ever durable (session invariant 1: only
// records durable on the primary are sent; a replica must never be ahead of the primary's
// crash-recovered log). So a flush of 64 commits makes one `records` message, not 64. Streaming
// reads of the WAL (`StorageEngine.readWAL`, bounded by the in-flight window and the batch
// limits) run off the event loop, on a serial queue per connection; batches are written back on
// the loop in the order the session asked for them. Only the handshake's one-record retention
// probe (`view(probing:)`) reads on the loop.
//
// What the primary learns is handed out through callbacks (replica progress for the commit
// quorum and lag metrics; a higher epoch seen, which must stop local writes; refusals, for the
// event journal).

import AeroCore
import AeroStorage
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

public final class ReplicationSource: Sendable {
    public struct Callbacks: Sendable {
        public var replicaProgress: @Sendable (NodeID, _ durable: LSN, _ applied: LSN) -> Void
        public var higherEpochSeen: @Sendable (Epoch, NodeID) -> Void
        /// A session ended; `refusal` when either side refused.
        public var sessionEnded: @Sendable (PrimarySessionEnd) -> Void

        public init(replicaProgress: @escaping @Sendable (NodeID, LSN, LSN) -> Void = { _, _, _ in },
                    higherEpochSeen: @escaping @Sendable (Epoch, NodeID) -> Void = { _, _ in },
                    sessionEnded: @escaping @Sendable (PrimarySessionEnd) -> Void = { _ in }) {
            self.replicaProgress = replicaProgress
            self.higherEpochSeen = higherEpochSeen
            self.sessionEnded = sessionEnded
        }
    }

    let engine: StorageEngine
    let nodeID: NodeID
    let members: Set<NodeID>
    let inFlightLSNMax: UInt64
    let heartbeatIntervalMs: Int64
    let callbacks: Callbacks
    let group: any EventLoopGroup
    /// The acknowledged-to-clients LSN for heartbeats (set by the commit path).
    let ackedLSN = NIOLockedValueBox(LSN.zero)
    private let state = NIOLockedValueBox<(server: (any Channel)?, handlers: [ObjectIdentifier: PrimaryConnectionHandler],
                                           listener: StorageEngine.DurableListenerID?)>((nil, [:], nil))
    /// The replica each connection streams to, once its session accepted it (hello and
    /// streamFrom done): who could acknowledge a write now. Cleared when the connection closes.
    private let streaming = NIOLockedValueBox<[ObjectIdentifier: NodeID]>([:])

    public init(engine: StorageEngine, nodeID: NodeID, members: Set<NodeID>, group: any EventLoopGroup,
                heartbeatIntervalMs: Int64, inFlightLSNMax: UInt64 = PrimaryReplicaSession.inFlightLSNMaxDefault,
                callbacks: Callbacks = Callbacks()) {
        precondition(heartbeatIntervalMs > 0, "heartbeat interval must be positive")
        self.engine = engine
        self.nodeID = nodeID
        self.members = members
        self.group = group
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.inFlightLSNMax = inFlightLSNMax
        self.callbacks = callbacks
    }

    /// Binds the peer listener; returns the bound port.
    public func start(host: String, port: Int) async throws -> Int {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = PrimaryConnectionHandler(source: self)
                    try PeerChannel.addHandlers(to: channel.pipeline.syncOperations)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    self.state.withLockedValue { $0.handlers[ObjectIdentifier(handler)] = handler }
                }
            }
            .bind(host: host, port: port).get()
        let listener = engine.addDurableListener { [weak self] lsn in self?.walDurable(lsn) }
        state.withLockedValue {
            $0.server = channel
            $0.listener = listener
        }
        return channel.localAddress?.port ?? port
    }

    /// Closes the listener and every replica connection.
    public func stop() async {
        let (server, handlers, listener) = state.withLockedValue { s in
            let taken = (s.server, Array(s.handlers.values), s.listener)
            s.server = nil
            s.handlers = [:]
            s.listener = nil
            return taken
        }
        if let listener { engine.removeDurableListener(listener) }
        try? await server?.close()
        for handler in handlers { handler.closeFromOutside() }
    }

    /// The WAL is durable through `lsn`: every session sends what its window allows (one
    /// coalesced hop per connection; see the notes above).
    public func walDurable(_ lsn: LSN) {
        for handler in state.withLockedValue({ Array($0.handlers.values) }) { handler.walDurable(lsn) }
    }

    /// Sets the LSN acknowledged to clients, carried by heartbeats.
    public func acknowledged(through lsn: LSN) {
        ackedLSN.withLockedValue { $0 = max($0, lsn) }
    }

    func forget(_ handler: PrimaryConnectionHandler) {
        _ = state.withLockedValue { $0.handlers.removeValue(forKey: ObjectIdentifier(handler)) }
        _ = streaming.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(handler)) }
    }

    func markStreaming(_ handler: PrimaryConnectionHandler, replica: NodeID) {
        streaming.withLockedValue { $0[ObjectIdentifier(handler)] = replica }
    }

    /// The replicas with a connection streaming from this primary now.
    public var streamingReplicas: Set<NodeID> { Set(streaming.withLockedValue { $0.values }) }

    /// The primary's facts for a session decision. `replicaNext` is probed in the WAL, so that a
    /// replica needing truncated WAL is told to re-seed at the handshake.
    func view(probing replicaNext: LSN?) throws -> PrimaryView {
        let durable = engine.durableLSN
        let checkpoint = engine.latestCheckpointLSN
        var oldest = LSN(1)
        if let replicaNext, replicaNext <= durable,
           case .walGone(let oldestAvailable, _) = try engine.readWAL(from: replicaNext, bytesMax: 1)
        {
            oldest = min(oldestAvailable ?? durable.next, durable.next)
        }
        return PrimaryView(nodeID: nodeID, epoch: engine.currentEpoch, durableLSN: durable, oldestRetainedLSN: oldest,
                           checkpointLSN: max(checkpoint, LSN(oldest.rawValue - 1)), history: engine.authority.history)
    }
}

/// One replica connection. Everything here runs on the channel's event loop.
final class PrimaryConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: `session`, `context` and `heartbeat` are touched only on the channel's event
    // loop, `readAhead` only on `readQueue`; `source` is Sendable.
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    let source: ReplicationSource
    private var session: PrimaryReplicaSession
    private var context: ChannelHandlerContext?
    private var heartbeat: RepeatedTask?
    /// The session reached streaming and the source was told (event loop only).
    private var markedStreaming = false
    /// The channel's loop (set once the handler is added) and whether a shipping hop is
    /// scheduled on it; read from any thread by `walDurable`.
    private let shipping = NIOLockedValueBox<(loop: (any EventLoop)?, scheduled: Bool)>((nil, false))
    /// Serial: WAL reads for this replica run here, in session order, off the event loop.
    private let readQueue = DispatchQueue(label: "aerodb.primary.wal-read")
    /// Records read past the last request's end, for the next one. Touched only on `readQueue`.
    private var readAhead: ArraySlice<WALRecord> = []
    /// Bound on `readAhead` (one read is bounded by `recordsBatchBytesMax` bytes anyway).
    static let readAheadRecordsMax = 65_536

    init(source: ReplicationSource) {
        self.source = source
        self.session = PrimaryReplicaSession(members: source.members, inFlightLSNMax: source.inFlightLSNMax)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        shipping.withLockedValue { $0.loop = context.eventLoop }
        let interval = TimeAmount.milliseconds(source.heartbeatIntervalMs)
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.tick()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        heartbeat?.cancel()
        session.connectionClosed()
        if case .closed(let end) = session.state { source.callbacks.sessionEnded(end) }
        source.forget(self)
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let probe: LSN? = if case .hello(let hello) = message { hello.lastDurableLSN.next } else { nil }
        do {
            let view = try source.view(probing: probe)
            perform(session.received(message, view: view))
            if !markedStreaming, case .streaming(let replica) = session.state {
                markedStreaming = true
                source.markStreaming(self, replica: replica)
            }
        } catch {
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// `lsn` is durable: ship from the engine's durable LSN in one hop, unless one is already
    /// scheduled (it runs after this call and reads a durable LSN >= `lsn`).
    func walDurable(_ lsn: LSN) {
        let loop = shipping.withLockedValue { s -> (any EventLoop)? in
            guard let loop = s.loop, !s.scheduled else { return nil }
            s.scheduled = true
            return loop
        }
        guard let loop else { return }
        loop.execute { [self] in
            // Cleared before the durable LSN is read: a later announcement either finds the
            // flag set and is covered by this read, or schedules the next hop.
            shipping.withLockedValue { $0.scheduled = false }
            guard context != nil else { return }
            perform(session.localDurable(max(source.engine.durableLSN, session.primaryDurableLSN)))
        }
    }

    func closeFromOutside() {
        guard let loop = shipping.withLockedValue({ $0.loop }) else { return }
        loop.execute { [self] in context?.close(promise: nil) }
    }

    private func tick() {
        guard context != nil else { return }
        let durable = source.engine.durableLSN
        perform(session.localDurable(max(durable, session.primaryDurableLSN)))
        perform(session.heartbeatDue(epoch: source.engine.currentEpoch, ackedLSN: source.ackedLSN.withLockedValue { $0 },
                                     durableLSN: durable))
    }

    private func perform(_ actions: [PrimaryReplicaSession.Action]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .send(let message):
                context.write(wrapOutboundOut(message), promise: nil)
            case .sendRecords(let from, let through):
                sendRecords(from: from, through: through, context: context)
            case .replicaProgress(let replica, let durable, let applied):
                source.callbacks.replicaProgress(replica, durable, applied)
            case .higherEpochSeen(let epoch, let replica):
                source.callbacks.higherEpochSeen(epoch, replica)
            case .close:
                context.flush()
                context.close(promise: nil)
                return
            }
        }
        context.flush()
    }

    /// Reads `from...through` from the WAL on this connection's serial read queue — never on
    /// the event loop, which must not wait for a disk — and writes the batches back on the loop,
    /// in the order the session asked for them (one serial queue, FIFO hops). `readWAL` reads on
    /// to the durable end (up to its byte bound); records past `through` are kept in
    /// `readAhead` for the next request, so every read continues at the engine's read cursor
    /// instead of rescanning the segment. The session only asks for durable records, so a short
    /// read is a storage fault: the connection is closed.
    private func sendRecords(from: LSN, through: LSN, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let engine = source.engine
        let epoch = engine.currentEpoch
        readQueue.async { [self] in
            var wanted: [WALRecord] = []
            var failed = false
            var next = from
            if readAhead.first?.lsn != next { readAhead.removeAll() }
            while next <= through {
                if readAhead.isEmpty {
                    guard case .records(let read)? = try? engine.readWAL(from: next, bytesMax: WireProtocol.recordsBatchBytesMax),
                          read.first?.lsn == next
                    else {
                        failed = true
                        break
                    }
                    readAhead = read[...]
                }
                let take = readAhead.prefix { $0.lsn <= through }
                wanted += take
                readAhead = readAhead.dropFirst(take.count)
                next = wanted[wanted.count - 1].lsn.next
                if !readAhead.isEmpty { break }
            }
            if readAhead.count > Self.readAheadRecordsMax { readAhead.removeAll() }
            let batches = RecordBatch.batches(of: wanted, senderEpoch: epoch)
            let closeAfter = failed
            loop.execute { [self] in
                guard let context = self.context else { return }
                for batch in batches { context.write(wrapOutboundOut(.records(batch)), promise: nil) }
                if closeAfter { context.close(promise: nil) } else { context.flush() }
            }
        }
    }
}
