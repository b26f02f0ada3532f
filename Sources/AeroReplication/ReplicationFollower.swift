// ReplicationFollower.swift — the replica's side of one connection to its primary: a
// ReplicaSession driven by SwiftNIO, appending what it receives to the storage engine.
//
// Threading: the session lives in the handler and is touched only on the channel's event loop.
// Appends and the authority change of `persistAuthority` go, in arrival order, to the
// session's ReplicaAppender (ReplicaAppender.swift): one serial queue hands each batch to the
// engine without waiting for its fsync, so batches arriving during a flush join the next one
// (group commit on the replica), appends are never reordered, and an authority change is durable
// before any later append is handed over. The appender reports the durable LSN once per flush;
// the handler hops onto the loop and the session sends one ack (durable = applied) for it. The
// event loop never waits for a disk.
//
// Sessions in turn: a new connection first waits until the previous session's operations were
// handed to the engine (`Observer.storageWork`) and the engine's last LSN is durable, then reads
// the position it announces in its hello — so it never starts behind records still pending.
//
// One connection attempt per `ReplicationFollower.connect` call: reconnecting (with its bound on
// attempts and back-off) belongs to the node, which decides from the session's end reason.

import AeroCore
import AeroStorage
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

public enum ReplicationFollower {
    /// Facts the node keeps about the session for status and `min_lsn` reads.
    public final class Observer: Sendable {
        private let box = NIOLockedValueBox<(primaryAcked: LSN, primaryDurable: LSN, end: ReplicaSessionEnd?, storageError: String?)>((.zero, .zero, nil, nil))
        /// Entered while a session's storage operation is not yet handed to the engine.
        let storageWork = DispatchGroup()

        public init() {}

        public var primaryAckedLSN: LSN { box.withLockedValue { $0.primaryAcked } }
        public var primaryDurableLSN: LSN { box.withLockedValue { $0.primaryDurable } }
        /// Why the session ended (nil while it runs).
        public var end: ReplicaSessionEnd? { box.withLockedValue { $0.end } }
        /// A storage refusal of a replicated append or authority change (the session was closed).
        public var storageError: String? { box.withLockedValue { $0.storageError } }

        /// Forgets the previous session's end before a new one starts; progress is kept.
        public func beginSession() {
            box.withLockedValue { $0.end = nil; $0.storageError = nil }
            // The catch-up target stays until the next hello replaces it: a replica that was
            // behind when its link dropped is still behind (still `recovering`) while it
            // reconnects, which is when a failover asks. Contact and re-seed state carry over.
        }

        /// Returns once every storage operation of this observer's sessions was handed to the
        /// engine and the engine's last LSN is durable (or its WAL failed, which the appends
        /// report): after it, no record received by an ended session is appended or pending.
        public func storageSettled(engine: StorageEngine) async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                storageWork.notify(queue: .global()) { continuation.resume() }
            }
            if engine.lastLSN > engine.durableLSN { _ = try? await engine.waitDurable(engine.lastLSN) }
        }

        public func progress(acked: LSN, durable: LSN) {
            box.withLockedValue { $0.primaryAcked = max($0.primaryAcked, acked); $0.primaryDurable = max($0.primaryDurable, durable) }
            link.withLockedValue { $0.heardPrimaryAcked = true }
        }
        public func ended(_ end: ReplicaSessionEnd) {
            box.withLockedValue { $0.end = end }
            if case .mustReseed = end { link.withLockedValue { $0.reseedNeeded = true } }
        }
        public func storageFailed(_ message: String) {
            box.withLockedValue { $0.storageError = message }
            // The appender's message carries the storage rule id in brackets.
            if message.contains("[\(Self.gapRuleID)]") { link.withLockedValue { $0.gapSeen = true } }
        }
        static let gapRuleID = StorageError.replicationGap(expected: .zero, received: .zero).ruleID

        // MARK: what the node reports in its status (NodeStatus.swift)
        // The session's I/O handler calls these; they are public so that tests can drive the
        // status from a known link state without a primary.

        /// The link to the primary as the node's status reports it. Times are monotonic
        /// milliseconds from the caller's clock (the handler's `ReplicationFollower.monotonicMs`).
        public struct Link: Sendable, Equatable {
            /// When the last message of any kind arrived from the primary; nil: none yet.
            public var lastContactMs: UInt64?
            /// A heartbeat carried the primary's acknowledged position (`primaryAckedLSN`).
            public var heardPrimaryAcked = false
            /// The primary's durable LSN announced in this session's hello: what "caught up at
            /// connect" means. nil before the first hello of a session.
            public var catchUpTargetLSN: LSN?
            /// This session reached `catchUpTargetLSN` durably (latched: later lag is lag, not recovery).
            public var caughtUp = false
            /// The primary said this replica must re-seed, and no re-seed completed since.
            public var reseedNeeded = false
            /// A re-seed in place is running.
            public var reseeding = false
            /// A replicated record did not continue this log (storage.replica.lsn-gap).
            public var gapSeen = false
        }
        private let link = NIOLockedValueBox(Link())
        public var linkState: Link { link.withLockedValue { $0 } }

        /// Any message from the primary (the handler calls it before the session reads it).
        public func heard(_ message: PeerMessage, nowMs: UInt64, localDurable: LSN) {
            link.withLockedValue { link in
                link.lastContactMs = nowMs
                switch message {
                case .hello(let hello):
                    link.catchUpTargetLSN = hello.lastDurableLSN
                    link.caughtUp = localDurable >= hello.lastDurableLSN
                case .records, .heartbeat:
                    // Streaming: the primary has the WAL this replica needs.
                    link.reseedNeeded = false
                default:
                    break
                }
            }
        }

        /// The local durable position advanced (the appender's flush).
        public func localDurable(_ lsn: LSN) {
            link.withLockedValue { link in
                if let target = link.catchUpTargetLSN, lsn >= target { link.caughtUp = true }
            }
        }

        /// A re-seed in place starts (`true`) or ends (`false`, `succeeded` says how).
        public func reseeding(_ running: Bool, succeeded: Bool = false) {
            link.withLockedValue { link in
                link.reseeding = running
                if !running && succeeded { link.reseedNeeded = false; link.gapSeen = false }
            }
        }
    }

    /// Monotonic milliseconds (never wall time): what `Link.lastContactMs` is measured in.
    public static func monotonicMs() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    /// Connects to the primary at `host:port` and runs one session. Returns the channel; its
    /// close future completes when the session ends (see `observer.end`).
    public static func connect(engine: StorageEngine, expectedPrimary: NodeID, host: String, port: Int,
                               group: any EventLoopGroup, observer: Observer, connectTimeoutMs: Int64) async throws -> any Channel {
        // The previous session's appends settle first (see the notes above).
        await observer.storageSettled(engine: engine)
        let authority = engine.authority
        let durable = engine.durableLSN
        let position = ReplicaPosition(
            nodeID: authority.nodeID, epoch: authority.epoch, durableLSN: durable,
            durableRecordEpoch: durable == .zero ? .zero : engine.lastEpoch, appliedLSN: engine.appliedLSN,
            history: authority.history)
        return try await ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(connectTimeoutMs))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try PeerChannel.addHandlers(to: channel.pipeline.syncOperations)
                    try channel.pipeline.syncOperations.addHandler(
                        ReplicaConnectionHandler(engine: engine, session: ReplicaSession(position: position, expectedPrimary: expectedPrimary),
                                                 observer: observer))
                }
            }
            .connect(host: host, port: port).get()
    }
}

final class ReplicaConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: `session`, `context` and `appender` are touched only on the channel's event
    // loop; the engine, the appender's internals and the observer are thread-safe.
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    let engine: StorageEngine
    let observer: ReplicationFollower.Observer
    private var session: ReplicaSession
    private var context: ChannelHandlerContext?
    /// Appends and authority changes, in session order (created when the channel is active).
    private var appender: ReplicaAppender?

    init(engine: StorageEngine, session: ReplicaSession, observer: ReplicationFollower.Observer) {
        self.engine = engine
        self.session = session
        self.observer = observer
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let loop = context.eventLoop
        appender = ReplicaAppender(
            engine: engine, work: observer.storageWork,
            onDurable: { [self] durable in
                loop.execute { [self] in
                    // The engine applies what is durable: applied == durable (storage E1).
                    observer.localDurable(durable)
                    perform(session.localDurableAndApplied(durable))
                }
            },
            onFailure: { [self] message in storageFailed(message, loop: loop) })
        perform(session.connected())
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.connectionClosed()
        if case .closed(let end) = session.state { observer.ended(end) }
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        observer.heard(message, nowMs: ReplicationFollower.monotonicMs(), localDurable: engine.durableLSN)
        perform(session.received(message))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func perform(_ actions: [ReplicaSession.Action]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .send(let message):
                context.write(wrapOutboundOut(message), promise: nil)
            case .persistAuthority(let epoch, let primary, let history):
                let loop = context.eventLoop
                appender?.persistAuthority({ current in
                    Authority(nodeID: current.nodeID, role: .replica, epoch: epoch, following: primary, history: history)
                }, describe: "authority change to epoch \(epoch)", then: { [self] in
                    loop.execute { [self] in perform(session.epochPersisted()) }
                })
            case .append(let wire):
                append(wire)
            case .primaryProgress(let acked, let durable):
                observer.progress(acked: acked, durable: durable)
            case .reseed:
                // Re-seeding is the node's decision (ReseedInPlace.swift);
                // the session has ended and says why in `observer.end`.
                break
            case .close:
                context.flush()
                context.close(promise: nil)
                return
            }
        }
        context.flush()
    }

    private func append(_ wire: [WireRecord]) {
        var records: [WALRecord] = []
        records.reserveCapacity(wire.count)
        for record in wire {
            guard let converted = WALRecord(record) else {
                // Through the appender, so that no later batch is handed to the engine either.
                appender?.fail("record \(record.lsn) has unknown kind \(record.kind)")
                return
            }
            records.append(converted)
        }
        appender?.append(records)
    }

    /// Storage refused what the session accepted: stop this session (nothing more is appended).
    private func storageFailed(_ message: String, loop: any EventLoop) {
        observer.storageFailed(message)
        loop.execute { [self] in context?.close(promise: nil) }
    }
}
