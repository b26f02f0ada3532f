// PeerChannel.swift — the NIO handlers that put WireCodec on a channel.
//
// Pipeline of every peer connection (`PeerChannel.addHandlers`):
//
//     socket <-> MessageToByteHandler(PeerFrameEncoder)
//            <-> ByteToMessageHandler(PeerFrameDecoder)
//            <-> PeerWireErrorHandler            (closes the channel on any WireError)
//            <-> the session handler of the caller
//
// A decoding error is final for the connection (WireProtocol invariant 3): the decoder throws,
// ByteToMessageHandler stops decoding and fires the error, and PeerWireErrorHandler closes the
// channel before passing the error on, so the session handler sees the typed error once.

import NIOCore

/// Bytes -> PeerMessage. Refuses an oversized length as soon as the header is in.
public struct PeerFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = PeerMessage

    public init() {
        WireProtocol.assertConstants()
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch try WireCodec.scan(buffer) {
        case .needMoreData:
            return .needMoreData
        case .complete:
            let message = try WireCodec.decodeFrame(&buffer)
            context.fireChannelRead(Self.wrapInboundOut(message))
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while case .continue = try decode(context: context, buffer: &buffer) {}
        if buffer.readableBytes > 0 {
            let buffered = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: buffered)
            throw WireError.truncatedFrame(bufferedBytes: buffered)
        }
        return .needMoreData
    }
}

/// PeerMessage -> bytes.
public struct PeerFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = PeerMessage

    public init() {}

    public func encode(data: PeerMessage, out: inout ByteBuffer) throws {
        try WireCodec.encodeFrame(data, into: &out)
    }
}

/// Closes the channel when a `WireError` passes, then forwards the error.
public final class PeerWireErrorHandler: ChannelInboundHandler, Sendable {
    public typealias InboundIn = PeerMessage
    public typealias InboundOut = PeerMessage

    public init() {}

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is WireError {
            context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }
}

public enum PeerChannel {
    /// Adds the peer protocol handlers to `pipeline`; the caller adds its session handler after.
    public static func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(MessageToByteHandler(PeerFrameEncoder()))
        try pipeline.addHandler(ByteToMessageHandler(PeerFrameDecoder()))
        try pipeline.addHandler(PeerWireErrorHandler())
    }
}
