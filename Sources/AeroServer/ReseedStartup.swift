// ReseedStartup.swift — a replica re-seeds itself at start when its primary no longer has the
// WAL it needs.
//
// Before the storage engine opens the data dir (`ServerNode.run`):
//   1. An interrupted re-seed is finished or discarded (`ReseedInstall.finishPending`, RS1).
//   2. A cluster replica that follows a configured primary asks it, over the peer protocol,
//      with the same `hello` a follow session starts with (its position from the data dir).
//      Only a `mustReseed` answer leads to a re-seed: the primary sends it after its divergence
//      and history checks passed (docs/replication.md), so the replica's WAL is a prefix of the
//      primary's history and strictly behind the checkpoint — re-seeding moves it forward and
//      discards nothing that is not in the checkpoint. A diverged node is refused
//      (REPL-DIVERGED) and is never re-seeded without an operator's `aerodb reseed`.
//   3. Any other answer, or no answer within `probeTimeoutMs`, and the node starts as usual.
// A replica told `mustReseed` while it runs journals `reseed_required` and re-seeds in place
// (ReseedInPlace.swift).

import AeroCore
import AeroReplication
import AeroStorage
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

public enum ReseedStartup {
    /// The probe's whole bound (connect, hello, answer).
    public static let probeTimeoutMs: Int64 = 2_000

    /// Runs steps 1–3 for `config`. Throws only when a re-seed was needed and failed.
    public static func prepare(config: ServerConfig, logger: Logger) async throws {
        do {
            try ReseedInstall.finishPending(directory: config.dataDir)
        } catch {
            throw StartupError(message: "cannot finish the interrupted re-seed of \(config.dataDir): \(error)")
        }
        guard config.members.count > 1,
              let inspected = try? StorageEngine.inspect(directory: config.dataDir), let authority = inspected.authority,
              authority.role == .replica, authority.nodeID == config.id,
              let following = authority.following, let primary = config.members.first(where: { $0.id == following })
        else { return }
        let last = LSN(inspected.report.lastLSN)
        let hello = Hello(nodeID: authority.nodeID, epoch: authority.epoch, lastDurableLSN: last,
                          lastDurableEpoch: last == .zero ? .zero : Epoch(inspected.report.lastEpoch), history: authority.history)
        guard case .mustReseed(let reseed)? = await probe(hello, host: primary.peer.host, port: primary.peer.port) else { return }
        logger.notice("the primary no longer holds the WAL this replica needs; re-seeding",
                      metadata: ["primary": "\(primary.id)", "reason": "\(reseed.reason)", "checkpoint_lsn": "\(reseed.checkpointLSN)"])
        do {
            let outcome = try await Reseed.run(dataDir: config.dataDir, nodeID: config.id, source: primary.http, discardLocalState: true,
                                               reason: "mustReseed from \(primary.id): \(reseed.reason)",
                                               journalLineBytesMax: Int(config.budgets.journalLineBytesMax))
            logger.notice("re-seeded", metadata: ["checkpoint_lsn": "\(outcome.checkpointLSN)", "epoch": "\(outcome.epoch)",
                                                  "entries": "\(outcome.entries)"])
        } catch {
            throw StartupError(message: "re-seeding \(config.dataDir) from \(primary.id) (\(primary.http)) failed: \(error)")
        }
    }

    /// Sends `hello` to a primary's peer listener and returns its first message (nil: none).
    static func probe(_ hello: Hello, host: String, port: Int) async -> PeerMessage? {
        let group = MultiThreadedEventLoopGroup.singleton
        let answer = ProbeAnswer(group.any().makePromise(of: PeerMessage?.self))
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(probeTimeoutMs))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try PeerChannel.addHandlers(to: channel.pipeline.syncOperations)
                        try channel.pipeline.syncOperations.addHandler(ProbeHandler(hello: hello, answer: answer))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            answer.complete(nil)
            return nil
        }
        let timeout = channel.eventLoop.scheduleTask(in: .milliseconds(probeTimeoutMs)) { answer.complete(nil) }
        let message = try? await answer.promise.futureResult.get()
        timeout.cancel()
        try? await channel.close()
        return message ?? nil
    }
}

/// Completes its promise with the first of several possible answers (message, close, timeout).
final class ProbeAnswer: Sendable {
    let promise: EventLoopPromise<PeerMessage?>
    private let done = NIOLockedValueBox(false)

    init(_ promise: EventLoopPromise<PeerMessage?>) { self.promise = promise }

    func complete(_ message: PeerMessage?) {
        let first = done.withLockedValue { wasDone in
            defer { wasDone = true }
            return !wasDone
        }
        if first { promise.succeed(message) }
    }
}

/// Writes the hello on connect and hands out the first message. Runs on its channel's loop.
final class ProbeHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    let hello: Hello
    let answer: ProbeAnswer

    init(hello: Hello, answer: ProbeAnswer) {
        self.hello = hello
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.hello(hello)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        answer.complete(unwrapInboundIn(data))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.complete(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
