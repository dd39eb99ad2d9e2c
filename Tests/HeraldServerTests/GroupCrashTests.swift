import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// PROTOCOL.md §4.2 by killing: a consumer group's member acknowledges with ids while `herald serve`, a
/// child process, gets SIGKILL mid-stream. After a restart, no event whose ack was confirmed (`ok`) is
/// delivered again, and every event not acknowledged before the kill is delivered: at least once, and
/// nothing confirmed undone (the group state journal, docs/storage.md). Run `HERALD_CRASH_ROUNDS / 4` times
/// (5 in `make test`, 50 in `make crash-test`).
@Suite(.timeLimit(.minutes(5)))
struct GroupCrashTests {
    static let rounds = max(1, CrashTests.rounds / 4)
    static let events = 2000
    /// Confirmed acks to wait for before the kill (the member keeps acknowledging until it).
    static let acksBeforeKill = 60

    @Test func noConfirmedAckIsUndoneByKillNine() async throws {
        for round in 0..<Self.rounds {
            try await crashOnce(round: round)
        }
    }

    /// What the member sent and was told, by event id.
    final class Acks: Sendable {
        let sent = Mutex<Set<String>>([])
        let confirmed = Mutex<Set<String>>([])
        let reached: AsyncStream<Void>
        private let continuation: AsyncStream<Void>.Continuation

        init() {
            (reached, continuation) = AsyncStream.makeStream()
        }

        func confirm(_ eventID: String) {
            let count = confirmed.withLock { confirmed in
                confirmed.insert(eventID)
                return confirmed.count
            }
            if count == GroupCrashTests.acksBeforeKill { continuation.finish() }
        }
    }

    /// The event ids delivered after the restart.
    final class Delivered: Sendable {
        let ids = Mutex<Set<String>>([])
        /// A second descriptor of the member's connection, once it subscribed: shut down to end it.
        let descriptor = Mutex<Int32?>(nil)
    }

    private func crashOnce(round: Int) async throws {
        let directory = NSTemporaryDirectory() + "herald-group-crash-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/h.sock"
        let arguments = ["serve", "--data-dir", "data", "--socket", socket, "--http", "127.0.0.1:0"]
        let run = try HeraldRun.start(arguments, in: directory)
        #expect(await run.firstLine()?.hasPrefix("herald ready socket=\(socket)") == true)
        let all = Set((0..<Self.events).map { "g\($0)" })
        try await onOwnThread { try Self.publishAll(socket) }
        let acks = Acks()
        async let member: Void = onOwnThread { try Self.acknowledgeUntilKilled(socket, acks) }
        for await _ in acks.reached {}
        kill(run.process.processIdentifier, SIGKILL)
        try await member
        #expect(await run.finish().status == SIGKILL, "round \(round)")

        let again = try HeraldRun.start(arguments, in: directory)
        let ready = try #require(await again.firstLine(), "round \(round): no ready line after the restart")
        let http = try #require(ready.split(separator: " ").first { $0.hasPrefix("http=") }?.dropFirst(5))
        let redelivered = Delivered()
        async let drained: Void = onOwnThread { try Self.acknowledgeEverything(socket, into: redelivered) }
        // The member joined, and everything is acknowledged and committed: nothing is left to deliver.
        try await waitUntil { redelivered.descriptor.withLock { $0 } != nil }
        while try await Self.groupLag(address: String(http)) != 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let descriptor = try #require(redelivered.descriptor.withLock { $0 })
        shutdown(descriptor, Int32(SHUT_RDWR))
        close(descriptor)
        try await drained
        kill(again.process.processIdentifier, SIGTERM)
        _ = await again.finish()

        let confirmed = acks.confirmed.withLock { $0 }
        let sent = acks.sent.withLock { $0 }
        let after = redelivered.ids.withLock { $0 }

        #expect(confirmed.count >= Self.acksBeforeKill)
        let undone = confirmed.intersection(after)
        #expect(undone.isEmpty, "round \(round): \(undone.count) events delivered again after a confirmed ack")
        let skipped = all.subtracting(sent).subtracting(after)
        #expect(skipped.isEmpty, "round \(round): \(skipped.count) events never acknowledged and not delivered")
    }

    /// Stores every event (confirmed; all sent, then every `ok` read) before the group reads any.
    private static func publishAll(_ socket: String) throws {
        let peer = try BlockingPeer(path: socket)
        try peer.hello("group-crash-publisher")
        for index in 0..<events {
            try peer.send(
                #"{"op":"publish","id":\#(index),"event":{"event_type":"block.new","chain_id":\#(index % 7),"event_id":"g\#(index)","payload":{"n":\#(index)}}}"#
            )
        }
        var confirmed = 0
        while confirmed < events {
            guard let reply = try peer.receive() else { throw PeerError("closed after \(confirmed) confirms") }
            if reply == #"{"op":"ping"}"# { continue }
            guard reply.hasPrefix(#"{"op":"ok","id":\#(confirmed),"#) else { throw PeerError("publish: \(reply)") }
            confirmed += 1
        }
    }

    /// Joins the group and acknowledges each event with an id (the seq) as it comes, recording each `ok`,
    /// until the broker goes away.
    private static func acknowledgeUntilKilled(_ socket: String, _ acks: Acks) throws {
        let peer = try BlockingPeer(path: socket)
        try peer.hello("group-crash-member")
        // A few in flight at once: the acks, each committed before its `ok`, pace the stream the kill cuts.
        try peer.send(
            #"{"op":"subscribe","id":0,"topics":["block.#"],"group":"g","from":"earliest","max_in_flight":8}"#)
        var eventIDs: [Int: String] = [:]
        while true {
            guard let frame = try? peer.receive() else { return }
            if frame == #"{"op":"ping"}"# {
                try? peer.send(#"{"op":"pong"}"#)
            } else if let (seq, eventID) = event(in: frame) {
                eventIDs[seq] = eventID
                acks.sent.withLock { _ = $0.insert(eventID) }
                guard (try? peer.send(#"{"op":"ack","id":\#(seq),"subscription":1,"seq":[\#(seq)]}"#)) != nil else {
                    return
                }
            } else if let id = integer(after: #""op":"ok","id":"#, in: frame), id > 0, let eventID = eventIDs[id] {
                acks.confirm(eventID)
            }
        }
    }

    /// Joins the group again and acknowledges (without ids) whatever it delivers, until the connection is
    /// shut down.
    private static func acknowledgeEverything(_ socket: String, into delivered: Delivered) throws {
        let peer = try BlockingPeer(path: socket)
        try peer.hello("group-crash-member")
        try peer.send(#"{"op":"subscribe","id":0,"topics":["block.#"],"group":"g","from":"earliest"}"#)
        guard try peer.receive() == #"{"op":"ok","id":0,"subscription":1}"# else { throw PeerError("not subscribed") }
        delivered.descriptor.withLock { $0 = peer.duplicateDescriptor() }
        while let frame = try? peer.receive() {
            if frame == #"{"op":"ping"}"# {
                try? peer.send(#"{"op":"pong"}"#)
            } else if let (seq, eventID) = event(in: frame) {
                delivered.ids.withLock { _ = $0.insert(eventID) }
                try? peer.send(#"{"op":"ack","subscription":1,"seq":[\#(seq)]}"#)
            }
        }
    }

    /// The seq and event id of an `event` frame.
    private static func event(in frame: String) -> (Int, String)? {
        guard frame.hasPrefix(#"{"op":"event","#), let seq = integer(after: #""seq":"#, in: frame),
            let start = frame.range(of: #""event_id":""#)
        else { return nil }
        return (seq, String(frame[start.upperBound...].prefix { $0 != "\"" }))
    }

    private static func integer(after marker: String, in text: String) -> Int? {
        guard let range = text.range(of: marker) else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    /// The group's lag summed over its partitions (`GET /v1/groups`).
    private static func groupLag(address: String) async throws -> Int {
        let answer = try await rawExchange(
            address: address, "GET /v1/groups HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        guard let body = answer.range(of: "\r\n\r\n").map({ answer[$0.upperBound...] }),
            let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let groups = object["groups"] as? [[String: Any]],
            let group = groups.first(where: { $0["name"] as? String == "g" }),
            let partitions = group["partitions"] as? [[String: Any]]
        else { throw PeerError("GET /v1/groups: \(answer)") }
        return partitions.reduce(0) { $0 + ($1["lag"] as? Int ?? 0) }
    }
}
