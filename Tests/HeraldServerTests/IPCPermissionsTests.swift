import Testing

@testable import HeraldCore
@testable import HeraldServer

/// Tokens and permissions of PROTOCOL.md §6 on a real socket.
@Suite(.timeLimit(.minutes(3)))
struct IPCPermissionsTests {
    private static func withTokens(_ configuration: inout HeraldConfiguration) {
        configuration.tokens = [
            .init(
                name: "explorer-ui",
                secret: "ui-secret",
                publish: [try! TopicPattern("notification")],
                subscribe: [try! TopicPattern("block.#"), try! TopicPattern("#.138")]
            )
        ]
    }

    private func hello(token: String?) -> String {
        let token = token.map { #","token":""# + $0 + #"""# } ?? ""
        return #"{"op":"hello","id":1,"protocol":1,"module":{"name":"ui","version":"1"}"# + token + "}"
    }

    @Test(arguments: [
        (nil as String?, "token: required by this broker"),
        ("wrong", "token: not valid"),
        ("ui-secre", "token: not valid"),
        ("ui-secret-", "token: not valid"),
    ])
    func withTokensConfiguredHelloNeedsAValidOne(_ token: String?, _ message: String) async throws {
        let broker = try await TestBroker.start(Self.withTokens)
        try await broker.withConnection { (client: inout Conversation) async throws in
            #expect(
                try await client.request(hello(token: token))
                    == #"{"op":"error","id":1,"code":"unauthorized","message":""# + message + #""}"#
            )
            #expect(try await client.receive() == nil)
        }
        try await broker.stop()
    }

    @Test func aTokensPermissionsBoundWhatItMayDo() async throws {
        let broker = try await TestBroker.start(Self.withTokens)
        try await broker.withConnection { (client: inout Conversation) async throws in
            #expect(try await client.request(hello(token: "ui-secret"))?.hasPrefix(#"{"op":"welcome""#) == true)
            // Covered: block.new.* by block.#, #.138 by itself.
            #expect(
                try await client.request(##"{"op":"subscribe","id":2,"topics":["block.new.*","#.138"]}"##)?.contains(
                    #""op":"ok""#) == true)
            // Not covered: only the union could be, and # by # alone.
            #expect(
                try await client.request(##"{"op":"subscribe","id":3,"topics":["block.#","#"]}"##)
                    == #"{"op":"error","id":3,"code":"forbidden","message":"topics[1]: '#' is not covered by the subscribe permissions of token 'explorer-ui'"}"#
            )
            #expect(
                try await client.request(#"{"op":"publish","id":4,"event":{"event_type":"notification"}}"#)?.contains(
                    #""op":"ok""#) == true)
            #expect(
                try await client.request(
                    #"{"op":"publish","event":{"event_type":"block.new","event_id":"e-1","chain_id":138}}"#)
                    == #"{"op":"error","code":"forbidden","message":"event: topic 'block.new.138' is not covered by the publish permissions of token 'explorer-ui'","event_id":"e-1"}"#
            )
            // Forbidden leaves the connection open.
            #expect(try await client.request(#"{"op":"ping","id":5}"#) == #"{"op":"pong","id":5}"#)
        }
        try await broker.stop()
    }

    @Test func withoutTokensEverythingIsAllowed() async throws {
        let broker = try await TestBroker.start()
        try await broker.withConnection { (client: inout Conversation) async throws in
            #expect(try await client.request(hello(token: nil))?.hasPrefix(#"{"op":"welcome""#) == true)
            #expect(
                try await client.request(##"{"op":"subscribe","id":2,"topics":["#"]}"##)?.contains(#""op":"ok""#)
                    == true)
            // Its own `#` subscription gets the event too; replies keep request order but events may come
            // before or after the `ok`.
            try await client.send(#"{"op":"publish","id":3,"event":{"event_type":"anything.at.all"}}"#)
            let frames = [try await client.receive() ?? "", try await client.receive() ?? ""].sorted()
            #expect(frames[0].hasPrefix(#"{"op":"event","subscription":1,"seq":1,"#))
            #expect(frames[1].hasPrefix(#"{"op":"ok","id":3,"#))
        }
        try await broker.stop()
    }

    /// EVENTS.md: the module and node lifecycle events are "published by the broker itself". A client's copy,
    /// even with no token configured, is `forbidden` (the connection stays); other `module.*` types are not.
    @Test(arguments: EventCatalog.publishedByTheBroker.sorted())
    func theBrokersLifecycleEventsAreRefusedFromClients(eventType: String) async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("impostor") { (client: inout Conversation) async throws in
            let reply = try await client.request(
                #"{"op":"publish","id":2,"event":{"event_type":""# + eventType + #"","event_id":"f-1"}}"#)
            #expect(
                reply
                    == #"{"op":"error","id":2,"code":"forbidden","message":"event: '"# + eventType
                    + #"' is published by the broker itself (EVENTS.md, module and node lifecycle)"}"#)
            let other = try await client.request(#"{"op":"publish","id":3,"event":{"event_type":"module.marker"}}"#)
            #expect(other?.hasPrefix(#"{"op":"ok","id":3"#) == true)
        }
        try await broker.stop()
    }

    /// The metadata the bridge tells events apart by is not a client's to set: an event claiming to be the
    /// broker's own (`producer` "herald") or another broker's (`origin`) would be stored and silently never
    /// bridged. Refused with `forbidden`; the connection stays.
    @Test func metadataTheBridgeReliesOnIsRefusedFromClients() async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("claimer") { (client: inout Conversation) async throws in
            let producer = try await client.request(
                #"{"op":"publish","id":1,"event":{"event_type":"tx","metadata":{"producer":"herald"}}}"#)
            #expect(
                producer
                    == #"{"op":"error","id":1,"code":"forbidden","message":"metadata.producer: 'herald' names the broker itself, for its own events"}"#
            )
            let origin = try await client.request(
                #"{"op":"publish","id":2,"event":{"event_type":"tx","metadata":{"origin":"b"}}}"#)
            #expect(origin?.hasPrefix(#"{"op":"error","id":2,"code":"forbidden","message":"metadata.origin: "#) == true)
            let other = try await client.request(
                #"{"op":"publish","id":3,"event":{"event_type":"tx","metadata":{"producer":"indexer"}}}"#)
            #expect(other?.hasPrefix(#"{"op":"ok","id":3"#) == true)
        }
        try await broker.stop()
    }

    @Test func secretsCompareExactly() {
        #expect(IPCSession.sameSecret("abc", "abc"))
        #expect(!IPCSession.sameSecret("abc", "abd"))
        #expect(!IPCSession.sameSecret("abc", "ab"))
        #expect(!IPCSession.sameSecret("abc", "abcd"))
        #expect(!IPCSession.sameSecret("", "a"))
        #expect(IPCSession.sameSecret("", ""))
    }
}
