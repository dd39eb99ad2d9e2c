import NIOCore
import NIOEmbedded
import Testing

@testable import HeraldServer

/// The wake-ups of one event loop's pumps (``PumpWakeups``), on an embedded loop whose tasks run only when
/// the test says so.
@Suite struct PumpWakeupsTests {
    /// Records each run, and wakes `next` (if any) the first time it runs.
    final class RecordingPump: ConnectionPump {
        let name: String
        let runs: NIOLoopBoundBox<[String]>
        var wakeDuringRun: (@Sendable () -> Void)?

        init(_ name: String, runs: NIOLoopBoundBox<[String]>) {
            self.name = name
            self.runs = runs
        }

        func run(context: ChannelHandlerContext) {
            runs.value.append(name)
            let wake = wakeDuringRun
            wakeDuringRun = nil
            wake?()
        }
    }

    final class Sink: ChannelInboundHandler {
        typealias InboundIn = Never
    }

    @Test func wokenPumpsRunOnTheLoopInTheOrderWokenAndAWakeDuringARunRunsAgain() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: Sink(), loop: loop)
        let context = try channel.pipeline.syncOperations.context(handlerType: Sink.self)
        let runs = NIOLoopBoundBox([String](), eventLoop: loop)
        let wakeups = PumpWakeups(eventLoop: loop)
        let pumps = ["a", "b", "c"].map { RecordingPump($0, runs: runs) }
        let wakes = pumps.map { $0.wakeUp(context: context, wakeups: wakeups) }
        // Woken pumps wait for the loop; `b` wakes `a` again while it runs.
        pumps[1].wakeDuringRun = wakes[0]
        wakes[2]()
        wakes[1]()
        wakes[0]()
        #expect(runs.value.isEmpty)
        loop.run()
        #expect(runs.value == ["c", "b", "a", "a"])
        // A pump that is gone by the time the loop runs is skipped.
        let wakeGone = RecordingPump("gone", runs: runs).wakeUp(context: context, wakeups: wakeups)
        wakes[0]()
        wakeGone()
        loop.run()
        #expect(runs.value == ["c", "b", "a", "a", "a"])
        _ = try channel.finish()
    }
}
