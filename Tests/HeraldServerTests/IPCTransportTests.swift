import Testing

@testable import HeraldCore
@testable import HeraldServer

/// The optional TCP listener of PROTOCOL.md §2.1: the same frames as the socket, and always a token.
@Suite(.timeLimit(.minutes(3)))
struct IPCTCPListenerTests {
    private static let hello = #"{"op":"hello","id":1,"protocol":1,"module":{"name":"remote","version":"1"}"#

    @Test func tcpSpeaksTheSameFramesAndNeedsAToken() async throws {
        let broker = try await TestBroker.start { configuration in
            configuration.ipc.tcp = "127.0.0.1:0"
            configuration.tokens = [
                .init(
                    name: "remote", secret: "s3cret", publish: [try! TopicPattern("#")],
                    subscribe: [try! TopicPattern("#")])
            ]
        }
        #expect(broker.tcpListener?.boundPort ?? 0 > 0)
        try await broker.withConnection(tcp: true) { (client: inout Conversation) async throws in
            #expect(
                try await client.request(Self.hello + "}")
                    == #"{"op":"error","id":1,"code":"unauthorized","message":"token: required by this broker"}"#)
            #expect(try await client.receive() == nil)
        }
        // An event published over TCP reaches a subscriber on the Unix socket, byte for byte.
        try await broker.withConnection { (subscriber: inout Conversation) async throws in
            _ = try await subscriber.request(Self.hello + #","token":"s3cret"}"#)
            #expect(
                try await subscriber.request(#"{"op":"subscribe","id":2,"topics":["tx.*"]}"#)
                    == #"{"op":"ok","id":2,"subscription":1}"#)
            try await broker.withConnection(tcp: true) { (publisher: inout Conversation) async throws in
                #expect(try await publisher.request(Self.hello + #","token":"s3cret"}"#)?.contains("welcome") == true)
                #expect(
                    try await publisher.request(
                        #"{"op":"publish","id":3,"event":{"event_type":"tx","event_id":"t-1","timestamp":"2026-11-23T08:00:00.000Z","chain_id":5}}"#
                    ) == #"{"op":"ok","id":3,"event_id":"t-1","duplicate":false}"#)
            }
            #expect(
                try await subscriber.receive()
                    == #"{"op":"event","subscription":1,"seq":1,"event":{"event_type":"tx","event_id":"t-1","timestamp":"2026-11-23T08:00:00.000Z","chain_id":5,"key":"5","metadata":{"producer":"remote"}}}"#
            )
        }
        try await broker.stop()
    }

    @Test(arguments: [nil, "anything"] as [String?])
    func withNoTokenConfiguredTCPRefusesEveryHello(_ token: String?) async throws {
        let broker = try await TestBroker.start { $0.ipc.tcp = "127.0.0.1:0" }
        try await broker.withConnection(tcp: true) { (client: inout Conversation) async throws in
            let hello = Self.hello + (token.map { #","token":""# + $0 + #""}"# } ?? "}")
            #expect(
                try await client.request(hello)
                    == #"{"op":"error","id":1,"code":"unauthorized","message":"token: this broker has no [[auth.tokens]], so its TCP listener accepts no one"}"#
            )
            #expect(try await client.receive() == nil)
        }
        // The Unix socket, guarded by its mode, still needs no token.
        try await broker.withModule("local") { (client: inout Conversation) async throws in
            #expect(try await client.request(#"{"op":"ping","id":1}"#) == #"{"op":"pong","id":1}"#)
        }
        try await broker.stop()
    }
}

/// `shutting_down` (PROTOCOL.md §2.4): after `node.shutdown`, connections stay but may not start anything new.
@Suite(.timeLimit(.minutes(3)))
struct IPCShutdownTests {
    @Test func afterNodeShutdownNewSubscribesPublishesAndReadiesAreRefusedAndTheConnectionStays() async throws {
        // A long lame-duck period: a loaded test machine must not reach the deadline before the last request.
        let broker = try await TestBroker.start { $0.modules.shutdownTimeoutMs = 60_000 }
        // A broker that started.
        broker.broker.completeStartup(components: ["ipc"])
        try await broker.withModule("watcher") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["node.shutdown"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            broker.beginStopping()
            let event = try #require(try await client.receive())
            #expect(event.hasPrefix(#"{"op":"event","subscription":1,"seq":1,"event":{"event_type":"node.shutdown""#))
            #expect(event.contains(#""payload":{"reason":"signal","timeout_seconds":60}"#))
            #expect(event.contains(#""metadata":{"producer":"herald"}"#))
            #expect(
                try await client.request(#"{"op":"publish","id":2,"event":{"event_type":"x"}}"#)
                    == #"{"op":"error","id":2,"code":"shutting_down","message":"the broker is shutting down"}"#)
            #expect(
                try await client.request(#"{"op":"publish","event":{"event_type":"x","event_id":"late"}}"#)
                    == #"{"op":"error","code":"shutting_down","message":"the broker is shutting down","event_id":"late"}"#
            )
            #expect(
                try await client.request(#"{"op":"subscribe","id":3,"topics":["y"]}"#)
                    == #"{"op":"error","id":3,"code":"shutting_down","message":"the broker is shutting down"}"#)
            #expect(
                try await client.request(#"{"op":"ready","id":5}"#)
                    == #"{"op":"error","id":5,"code":"shutting_down","message":"the broker is shutting down"}"#)
            #expect(try await client.request(#"{"op":"ping","id":4}"#) == #"{"op":"pong","id":4}"#)
        }
        // The client left: the broker stops without waiting for the deadline.
        try await broker.stopped()
    }

    @Test func aConnectionThatStaysIsClosedAtTheDeadline() async throws {
        let broker = try await TestBroker.start { $0.modules.shutdownTimeoutMs = 200 }
        try await broker.withModule("lingering") { (client: inout Conversation) async throws in
            #expect(try await client.request(#"{"op":"ready","id":1}"#) == #"{"op":"ok","id":1}"#)
            broker.beginStopping()
            // Nothing is subscribed, so the next thing this connection sees is its close.
            #expect(try await client.receive() == nil)
        }
        try await broker.stopped()
    }
}

/// Both listeners stop together when the shutdown begins, whichever is told first.
@Suite(.timeLimit(.minutes(3)))
struct IPCListenersShutdownTests {
    @Test func theSocketStopsAcceptingWhileTCPConnectionsDrain() async throws {
        let broker = try await TestBroker.start { configuration in
            configuration.ipc.tcp = "127.0.0.1:0"
            configuration.tokens = [.init(name: "t", secret: "s", publish: [], subscribe: [])]
            // A deadline a loaded machine cannot reach while the test runs; the drain ends when the
            // connection leaves.
            configuration.modules.shutdownTimeoutMs = 50_000
        }
        try await broker.withConnection(tcp: true) { (remote: inout Conversation) async throws in
            _ = try await remote.request(
                #"{"op":"hello","id":1,"protocol":1,"module":{"name":"remote","version":"1"},"token":"s"}"#)
            broker.beginStopping()
            try await waitUntil { broker.broker.isShuttingDown }
            // The TCP connection is still open (it has until the deadline), but the socket accepts no one.
            var refused = false
            while !refused {
                do {
                    try await broker.withConnection { (_: inout Conversation) async throws in }
                    try await Task.sleep(for: .milliseconds(2))
                } catch {
                    refused = true
                }
            }
            #expect(try await remote.request(#"{"op":"ping","id":2}"#) == #"{"op":"pong","id":2}"#)
        }
        try await broker.stopped()
    }
}
