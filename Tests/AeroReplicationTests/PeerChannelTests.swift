import AeroCore
import AeroReplication
import AeroTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

/// Records what passes (and passes it on).
final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = PeerMessage
    private let state = NIOLockedValueBox<(messages: [PeerMessage], errors: [WireError])>(([], []))

    var messages: [PeerMessage] { state.withLockedValue { $0.messages } }
    var errors: [WireError] { state.withLockedValue { $0.errors } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        state.withLockedValue { $0.messages.append(message) }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let wire = error as? WireError { state.withLockedValue { $0.errors.append(wire) } }
        context.fireErrorCaught(error)
    }
}

@Suite("Peer channel handlers")
struct PeerChannelTests {
    func embedded() throws -> (EmbeddedChannel, Collector) {
        let channel = EmbeddedChannel()
        let collector = Collector()
        try PeerChannel.addHandlers(to: channel.pipeline.syncOperations)
        try channel.pipeline.syncOperations.addHandler(collector)
        return (channel, collector)
    }

    @Test("frames split at every byte boundary decode to the same messages")
    func splitInput() throws {
        var all = ByteBufferAllocator().buffer(capacity: 1024)
        for message in Fixture.everyMessage { try WireCodec.encodeFrame(message, into: &all) }
        let bytes = Fixture.bytes(all)
        for chunk in [1, 3, 7, 64, bytes.count] {
            let (channel, collector) = try embedded()
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                var piece = channel.allocator.buffer(capacity: end - offset)
                piece.writeBytes(bytes[offset..<end])
                try channel.writeInbound(piece)
                offset = end
            }
            #expect(collector.messages == Fixture.everyMessage, "chunk size \(chunk)")
            #expect(collector.errors.isEmpty)
            var passedOn: [PeerMessage] = []
            while let message = try channel.readInbound(as: PeerMessage.self) { passedOn.append(message) }
            #expect(passedOn == Fixture.everyMessage)
            #expect(try channel.finish().isClean)
        }
    }

    @Test("outbound messages are encoded as frames")
    func outbound() throws {
        let (channel, _) = try embedded()
        for message in Fixture.everyMessage {
            try channel.writeOutbound(message)
            let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
            #expect(written == (try WireCodec.frame(message)))
        }
        #expect(try channel.finish().isClean)
    }

    @Test("an oversized length closes the channel with a typed error, before the body arrives")
    func oversizedCloses() throws {
        let (channel, collector) = try embedded()
        var header = channel.allocator.buffer(capacity: 8)
        header.writeInteger(UInt32(WireProtocol.frameBodyBytesMax + 1))
        header.writeInteger(UInt32(0))
        #expect(throws: WireError.self) { try channel.writeInbound(header) }
        #expect(collector.errors == [.frameTooLarge(bodyBytes: WireProtocol.frameBodyBytesMax + 1, maxBytes: WireProtocol.frameBodyBytesMax)])
        #expect(!channel.isActive)
    }

    @Test("a corrupt frame after a good one: the good one is delivered, then the channel closes")
    func corruptCloses() throws {
        let (channel, collector) = try embedded()
        var input = try WireCodec.frame(Fixture.everyMessage[3])
        var bad = try WireCodec.frame(Fixture.everyMessage[4])
        bad.setInteger(UInt8(0xFF), at: bad.writerIndex - 1)
        input.writeBuffer(&bad)
        // A third, valid frame after the bad one must not be interpreted (invariant 3).
        var after = try WireCodec.frame(Fixture.everyMessage[5])
        input.writeBuffer(&after)
        #expect(throws: WireError.self) { try channel.writeInbound(input) }
        #expect(collector.messages == [Fixture.everyMessage[3]])
        #expect(collector.errors.count == 1)
        #expect(!channel.isActive)
    }

    @Test("end of input inside a frame is a truncatedFrame error")
    func truncatedAtEOF() throws {
        let (channel, collector) = try embedded()
        var input = try WireCodec.frame(Fixture.everyMessage[0])
        input.moveWriterIndex(to: input.writerIndex - 5)
        let buffered = input.readableBytes
        try channel.writeInbound(input)
        #expect(collector.messages.isEmpty)
        #expect(throws: WireError.truncatedFrame(bufferedBytes: buffered)) { _ = try channel.finish() }
    }
}
