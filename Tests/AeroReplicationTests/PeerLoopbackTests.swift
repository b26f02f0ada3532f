import AeroCore
import AeroReplication
import AeroTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

/// Echoes every message back, over a real socket.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

@Suite("Peer channel over loopback TCP")
struct PeerLoopbackTests {
    func startServer(group: MultiThreadedEventLoopGroup, collector: Collector) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try PeerChannel.addHandlers(to: channel.pipeline.syncOperations)
                    try channel.pipeline.syncOperations.addHandler(collector)
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func connect(group: MultiThreadedEventLoopGroup, port: Int, collector: Collector) async throws -> any Channel {
        try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try PeerChannel.addHandlers(to: channel.pipeline.syncOperations)
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    @Test("every message kind crosses a real connection and comes back intact")
    func echo() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverSeen = Collector()
        let server = try await startServer(group: group, collector: serverSeen)
        let clientSeen = Collector()
        let client = try await connect(group: group, port: server.localAddress!.port!, collector: clientSeen)
        for message in Fixture.everyMessage { try await client.writeAndFlush(message).get() }
        // Wait for the echoes: at most 30 s (a bound, not a timing assertion).
        _ = await Deadline.waitUntil(timeoutMs: 30_000) { clientSeen.messages.count >= Fixture.everyMessage.count }
        #expect(clientSeen.messages == Fixture.everyMessage)
        #expect(serverSeen.messages == Fixture.everyMessage)
        try await client.close().get()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test("garbage from a peer makes the receiver close the connection")
    func garbageCloses() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverSeen = Collector()
        let server = try await startServer(group: group, collector: serverSeen)
        // A raw client without the peer handlers, sending an impossible length.
        let raw = try await ClientBootstrap(group: group)
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        var garbage = raw.allocator.buffer(capacity: 8)
        garbage.writeInteger(UInt32.max)
        garbage.writeInteger(UInt32(0))
        try await raw.writeAndFlush(garbage).get()
        // The server closes; the client observes it as its channel's close future completing.
        try await raw.closeFuture.get()
        #expect(serverSeen.errors == [.frameTooLarge(bodyBytes: Int(UInt32.max), maxBytes: WireProtocol.frameBodyBytesMax)])
        #expect(serverSeen.messages.isEmpty)
        try await server.close().get()
        try await group.shutdownGracefully()
    }
}
