import HeraldProtocol
import NIOCore

/// One unit read from a connection: a frame's JSON bytes, or a length that breaks `1 ≤ N ≤ max_frame`.
enum InboundFrame: Sendable {
    case frame(ByteBuffer)
    case oversized(length: Int)
}

/// Cuts a connection's byte stream into frames: a 4-byte big-endian length, then that many bytes. Every
/// frame complete in what one read brought is passed on as one batch, so the connection's task wakes once
/// per read, not once per frame.
///
/// Hand-written rather than swift-nio-extras' `LengthFieldBasedFrameDecoder`, which would buffer up to the
/// announced length before anyone could refuse it: PROTOCOL.md §2.4 answers a length of 0 or above
/// `max_frame` with `frame_too_large` as soon as the length is read, and the connection then closes, so
/// after an oversized length everything else is discarded.
final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [InboundFrame]

    private let maximumLength: Int
    private var refused = false

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var frames: [InboundFrame] = []
        while !refused {
            guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
                break
            }
            guard FrameLength.validate(Int(length), maximum: maximumLength) == nil else {
                refused = true
                frames.append(.oversized(length: Int(length)))
                break
            }
            guard buffer.readableBytes >= 4 + Int(length) else { break }
            buffer.moveReaderIndex(forwardBy: 4)
            frames.append(.frame(buffer.readSlice(length: Int(length))!))
        }
        if refused { buffer.moveReaderIndex(to: buffer.writerIndex) }
        if !frames.isEmpty { context.fireChannelRead(wrapInboundOut(frames)) }
        return .needMoreData
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A frame cut short by the end of the stream is dropped with the connection.
        try decode(context: context, buffer: &buffer)
    }
}
