import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import HeraldClient

/// ``FrameForwarder`` and ``ReadBudget`` on an embedded channel: the client stops reading its socket while
/// the frames its reader has not taken yet hold the budget, and reads again once the reader has taken them
/// down to half of it. Before, frames queued between NIO and the reader without bound.
@Suite struct ClientReadBudgetTests {
    /// Counts the reads that reach the socket (the pipeline's head side of the forwarder).
    final class ReadCounter: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = Never
        let count = Atomic(0)

        func read(context: ChannelHandlerContext) {
            count.add(1, ordering: .relaxed)
            context.read()
        }
    }

    @Test func theSocketIsNotReadWhileTheReaderIsBehind() async throws {
        let (frames, input) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let budget = ReadBudget(limit: 100)
        let reads = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(reads, FrameForwarder(input, budget: budget))
        func socketReads() -> Int { reads.count.load(ordering: .relaxed) }

        channel.read()
        #expect(socketReads() == 1)
        try channel.writeInbound(ByteBuffer(repeating: 1, count: 60))
        channel.read()
        #expect(socketReads() == 2, "60 bytes waiting, under the 100 of the budget")
        try channel.writeInbound(ByteBuffer(repeating: 2, count: 60))
        channel.read()
        channel.read()
        #expect(socketReads() == 2, "120 bytes waiting: the reads are held")

        // The reader takes the first frame: 60 bytes still wait, more than half the budget.
        #expect(!budget.taken(60))
        channel.read()
        #expect(socketReads() == 2)
        // The second: nothing waits, and the reader is told to read again, which now reaches the socket.
        #expect(budget.taken(60))
        channel.read()
        #expect(socketReads() == 3)
        // Only a held read is made again.
        #expect(!budget.taken(0))

        // Both frames went to the reader, in order, and the stream ends with the channel.
        _ = try channel.finish()
        var collected: [[UInt8]] = []
        for try await frame in frames { collected.append(Array(frame.readableBytesView)) }
        #expect(collected == [[UInt8](repeating: 1, count: 60), [UInt8](repeating: 2, count: 60)])
    }
}
