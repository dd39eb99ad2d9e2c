import NIOCore
import Testing

@testable import HeraldServer

/// PROTOCOL.md §2.3's timing, without a clock: each check says what to do and when the next one is due.
@Suite struct HeartbeatTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let interval = TimeAmount.milliseconds(100)

    @Test func aSilentConnectionIsPingedAtOneHeartbeatAndDeadAtThree() {
        var heartbeat = Heartbeat(interval: interval, now: start)
        // Heard at the start: the first check is due one heartbeat later, not before.
        var (verdict, next) = heartbeat.check(at: start + .milliseconds(40))
        #expect(verdict == .alive)
        #expect(next == start + interval)
        (verdict, next) = heartbeat.check(at: next)
        #expect(verdict == .ping(unanswered: false))
        #expect(next == start + interval * 2)
        (verdict, next) = heartbeat.check(at: next)
        #expect(verdict == .ping(unanswered: true))
        #expect(next == start + interval * 3)
        (verdict, _) = heartbeat.check(at: next)
        #expect(verdict == .dead)
    }

    @Test func anAnswerEndsTheSilenceAndMovesTheNextCheck() {
        var heartbeat = Heartbeat(interval: interval, now: start)
        var (verdict, next) = heartbeat.check(at: start + interval)
        #expect(verdict == .ping(unanswered: false))
        heartbeat.heard(at: start + .milliseconds(130))
        (verdict, next) = heartbeat.check(at: next)
        #expect(verdict == .alive)
        #expect(next == start + .milliseconds(230))
        // A new silence begins from the answer: pinged again a heartbeat after it.
        (verdict, _) = heartbeat.check(at: next)
        #expect(verdict == .ping(unanswered: false))
    }

    /// A check that runs late (a busy machine) never closes a connection that has not had two heartbeats
    /// since its first ping to answer.
    @Test func aLateFirstPingStillLeavesTwoHeartbeatsToAnswer() {
        var heartbeat = Heartbeat(interval: interval, now: start)
        var (verdict, next) = heartbeat.check(at: start + interval * 5)
        #expect(verdict == .ping(unanswered: false))
        #expect(next == start + interval * 6)
        (verdict, next) = heartbeat.check(at: next)
        #expect(verdict == .ping(unanswered: true))
        #expect(next == start + interval * 7)
        (verdict, _) = heartbeat.check(at: next - .milliseconds(1))
        #expect(verdict == .ping(unanswered: true))
        (verdict, _) = heartbeat.check(at: start + interval * 7)
        #expect(verdict == .dead)
    }
}
