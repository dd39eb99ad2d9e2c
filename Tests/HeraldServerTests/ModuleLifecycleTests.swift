import Foundation
import Testing

@testable import HeraldServer

/// PROTOCOL.md §3 on a real broker: when modules become loaded and unloaded, and what each is told.
@Suite(.timeLimit(.minutes(3)))
struct ModuleLifecycleTests {
    /// An event frame as `seq event_type module_name[ reason]`, or the frame itself when it is not an event.
    private func summary(_ frame: String?) -> String {
        guard let frame, let object = try? JSONSerialization.jsonObject(with: Data(frame.utf8)) as? [String: Any],
            object["op"] as? String == "event", let event = object["event"] as? [String: Any],
            let payload = event["payload"] as? [String: Any]
        else { return frame ?? "closed" }
        var text = "\(object["seq"]!) \(event["event_type"]!) \(payload["module_name"]!)"
        if let reason = payload["reason"] { text += " \(reason)" }
        return text
    }

    @Test func theFirstModuleIsToldOfItselfOnce() async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("indexer") { (indexer: inout Conversation) async throws in
            #expect(
                try await indexer.request(#"{"op":"subscribe","id":1,"topics":["module.#"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            #expect(summary(try await indexer.receive()) == "1 module.loaded indexer")
            // A later subscribe of the same module replays nothing and publishes nothing.
            #expect(
                try await indexer.request(##"{"op":"subscribe","id":2,"topics":["#"]}"##)
                    == #"{"op":"ok","id":2,"subscription":2}"#)
            #expect(try await indexer.request(#"{"op":"ping","id":3}"#) == #"{"op":"pong","id":3}"#)
        }
        try await broker.stop()
    }

    @Test func aHotLoadedModuleGetsOkThenTheOthersOldestFirstThenItself() async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("indexer") { (indexer: inout Conversation) async throws in
            _ = try await indexer.request(#"{"op":"subscribe","id":1,"topics":["module.*"]}"#)
            #expect(summary(try await indexer.receive()) == "1 module.loaded indexer")
            try await broker.withModule("cache") { (cache: inout Conversation) async throws in
                #expect(try await cache.request(#"{"op":"ready","id":1}"#) == #"{"op":"ok","id":1}"#)
                #expect(summary(try await indexer.receive()) == "2 module.loaded cache")
                try await broker.withModule("fee-oracle") { (oracle: inout Conversation) async throws in
                    #expect(
                        try await oracle.request(#"{"op":"subscribe","id":7,"topics":["module.*"]}"#)
                            == #"{"op":"ok","id":7,"subscription":2}"#
                    )
                    #expect(summary(try await oracle.receive()) == "1 module.loaded indexer")
                    #expect(summary(try await oracle.receive()) == "2 module.loaded cache")
                    #expect(summary(try await oracle.receive()) == "3 module.loaded fee-oracle")
                    #expect(summary(try await indexer.receive()) == "3 module.loaded fee-oracle")
                }
                #expect(summary(try await indexer.receive()) == "4 module.unloaded fee-oracle disconnected")
            }
            #expect(summary(try await indexer.receive()) == "5 module.unloaded cache disconnected")
        }
        try await broker.stop()
    }

    @Test func modulesLoadingAtTheSameMomentAreEachToldOfTheOtherExactlyOnce() async throws {
        let broker = try await TestBroker.start()
        for round in 0..<40 {
            let names = ["a\(round)", "b\(round)"]
            let barrier = Barrier(parties: 2)
            let seen = try await withThrowingTaskGroup(of: [String: [String]].self) { tasks in
                for name in names {
                    tasks.addTask {
                        try await broker.withModule(name) {
                            (module: inout Conversation) async throws -> [String: [String]] in
                            // Both subscribe at once: each loads its module.
                            await barrier.arrive()
                            let ok = try await module.request(
                                #"{"op":"subscribe","id":1,"topics":["module.loaded","marker"]}"#)
                            #expect(ok?.hasPrefix(#"{"op":"ok","id":1,"subscription":"#) == true)
                            // Once both loads are done, a marker from each: queued behind every `module.loaded`.
                            await barrier.arrive()
                            try await module.send(
                                #"{"op":"publish","event":{"event_type":"marker","event_id":"m-\#(name)"}}"#)
                            var loaded: [String: [String]] = [:]
                            var markers = 0
                            while markers < 2, let frame = try await module.receive() {
                                let object = try #require(
                                    try JSONSerialization.jsonObject(with: Data(frame.utf8)) as? [String: Any])
                                let event = try #require(object["event"] as? [String: Any])
                                if event["event_type"] as? String == "marker" {
                                    markers += 1
                                } else if let payload = event["payload"] as? [String: Any],
                                    let loadedName = payload["module_name"] as? String, names.contains(loadedName)
                                {
                                    loaded[loadedName, default: []].append(event["event_id"] as? String ?? "")
                                }
                            }
                            return loaded
                        }
                    }
                }
                var all: [[String: [String]]] = []
                for try await loaded in tasks { all.append(loaded) }
                return all
            }
            for loaded in seen {
                // Each module's `module.loaded` once — in the replay or live, never both — with one event_id.
                #expect(loaded.mapValues(\.count) == [names[0]: 1, names[1]: 1], "round \(round)")
            }
            #expect(Set(seen.flatMap { $0[names[0]] ?? [] }).count == 1, "round \(round)")
            #expect(Set(seen.flatMap { $0[names[1]] ?? [] }).count == 1, "round \(round)")
        }
        try await broker.stop()
    }

    /// Loads `names` one after the other (`ready`), each connection open while `body` runs.
    private func loaded(_ names: ArraySlice<String>, on broker: TestBroker, _ body: () async throws -> Void)
        async throws
    {
        guard let name = names.first else { return try await body() }
        try await broker.withModule(name) { (module: inout Conversation) async throws in
            #expect(try await module.request(#"{"op":"ready","id":1}"#) == #"{"op":"ok","id":1}"#)
            try await loaded(names.dropFirst(), on: broker, body)
        }
    }

    @Test func theReplayIsTheStoredEventsAndIsNotCutByTheBuffer() async throws {
        let broker = try await TestBroker.start(durable: true)
        try await loaded(["m0", "m1", "m2", "m3", "m4"], on: broker) {
            // The stored `module.loaded` of m0…m4, in load order.
            let log = try #require(broker.broker.log)
            var stored: [String] = []
            // Read once the log's writer wrote the last of them (a `ready` is answered before its event is).
            try await waitUntil {
                stored = []
                for record in (try? log.read(partition: log.partition(forKey: Broker.serverName), from: 0)) ?? [] {
                    let text = String(decoding: record.bytes, as: UTF8.self)
                    if text.contains(#""event_type":"module.loaded""#) { stored.append(text) }
                }
                return stored.count == 5
            }
            try await broker.withModule("late") { (late: inout Conversation) async throws in
                // A buffer of 2 cannot hold five replays and the module's own event: they are kept anyway.
                #expect(
                    try await late.request(#"{"op":"subscribe","id":1,"topics":["module.loaded"],"buffer":2}"#)
                        == #"{"op":"ok","id":1,"subscription":1}"#)
                for (index, original) in stored.enumerated() {
                    // Exactly the stored envelope: same event_id, timestamp, key, offset and partition.
                    #expect(
                        try await late.receive()
                            == #"{"op":"event","subscription":1,"seq":\#(index + 1),"event":"# + original + "}")
                }
                let own = try #require(try await late.receive())
                #expect(own.contains(#""seq":6,"#) && own.contains(#""module_name":"late""#))
                let stats = try #require(try await late.request(#"{"op":"stats","id":2,"module":"late"}"#))
                #expect(stats.contains(#""channel_full":0"#))
            }
        }
        try await broker.stop()
    }

    @Test func aSubscriptionThatDoesNotMatchModuleLoadedGetsNoReplay() async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("indexer") { (indexer: inout Conversation) async throws in
            _ = try await indexer.request(#"{"op":"ready","id":1}"#)
            try await broker.withModule("blocks") { (blocks: inout Conversation) async throws in
                _ = try await blocks.request(#"{"op":"subscribe","id":1,"topics":["block.#"]}"#)
                try await broker.withModule("node") { (node: inout Conversation) async throws in
                    _ = try await node.request(
                        #"{"op":"publish","id":1,"event":{"event_type":"block.new","chain_id":1}}"#)
                }
                let first = try #require(try await blocks.receive())
                #expect(first.hasPrefix(#"{"op":"event","subscription":1,"seq":1,"event":{"event_type":"block.new""#))
            }
        }
        try await broker.stop()
    }

    @Test func unloadReasonsAndTheLastConnectionRule() async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("watcher") { (watcher: inout Conversation) async throws in
            _ = try await watcher.request(#"{"op":"subscribe","id":1,"topics":["module.unloaded"]}"#)
            // A module that says bye on its own is unloaded with reason "bye".
            try await broker.withModule("polite") { (polite: inout Conversation) async throws in
                _ = try await polite.request(#"{"op":"ready","id":1}"#)
                _ = try await polite.request(#"{"op":"bye","id":2}"#)
            }
            #expect(summary(try await watcher.receive()) == "1 module.unloaded polite bye")
            // Two connections of one module: unloaded only when the second goes.
            try await broker.withModule("pair") { (first: inout Conversation) async throws in
                _ = try await first.request(#"{"op":"ready","id":1}"#)
                try await broker.withModule("pair") { (second: inout Conversation) async throws in
                    #expect(try await second.request(#"{"op":"ready","id":1}"#) == #"{"op":"ok","id":1}"#)
                }
                // The second connection is gone and nothing was published: the next event is a new one.
                try await broker.withModule("probe") { (probe: inout Conversation) async throws in
                    _ = try await probe.request(#"{"op":"ready","id":1}"#)
                }
                #expect(summary(try await watcher.receive()) == "2 module.unloaded probe disconnected")
            }
            #expect(summary(try await watcher.receive()) == "3 module.unloaded pair disconnected")
            // A connection that only publishes is never loaded: no module.unloaded for it.
            try await broker.withModule("publisher") { (publisher: inout Conversation) async throws in
                _ = try await publisher.request(#"{"op":"publish","id":1,"event":{"event_type":"x"}}"#)
            }
            try await broker.withModule("last") { (last: inout Conversation) async throws in
                _ = try await last.request(#"{"op":"ready","id":1}"#)
            }
            #expect(summary(try await watcher.receive()) == "4 module.unloaded last disconnected")
        }
        // The watcher itself is unloaded once the broker has seen its connection close.
        try await waitUntil { broker.broker.modules.loadedModules.isEmpty }
        try await broker.stop()
    }

    @Test func duringAShutdownAModuleThatLeavesWasStoppedEvenIfItSaidBye() async throws {
        // The connections' time to leave long enough that the watcher is not closed before it hears the
        // unload on a machine busy with the whole suite; both leave on their own well before.
        let broker = try await TestBroker.start { $0.modules.shutdownTimeoutMs = 60_000 }
        try await broker.withModule("watcher") { (watcher: inout Conversation) async throws in
            _ = try await watcher.request(#"{"op":"subscribe","id":1,"topics":["module.unloaded"]}"#)
            try await broker.withModule("external") { (external: inout Conversation) async throws in
                _ = try await external.request(#"{"op":"ready","id":1}"#)
                broker.broker.beginShutdown(reason: "test")
                _ = try await external.request(#"{"op":"bye","id":2}"#)
            }
            var next = try await watcher.receive()
            while next == #"{"op":"ping"}"# { next = try await watcher.receive() }
            #expect(summary(next) == "1 module.unloaded external stopped")
        }
        try await broker.stop()
    }

    @Test func theRegistryLoadsOnceAndUnloadsWithTheLastConnection() {
        let registry = ModuleRegistry()
        registry.connected("a", version: "1")
        registry.connected("a", version: "1")
        registry.connected("b", version: "2")
        #expect(registry.load("a", version: "1") == [])
        #expect(registry.load("a", version: "1") == nil)
        #expect(registry.load("b", version: "2") == [.init(name: "a", version: "1")])
        #expect(registry.disconnected("a") == (false, nil))
        #expect(registry.disconnected("a") == (true, .init(name: "a", version: "1")))
        #expect(registry.loadedModules == [.init(name: "b", version: "2")])
        registry.connected("c", version: "3")
        // The listing: loaded modules first, then those only connected.
        #expect(registry.listing.map(\.name) == ["b", "c"])
        #expect(registry.listing.map { $0.loadedAt == nil } == [false, true])
        #expect(registry.listing.map(\.version) == ["2", "3"])
        #expect(registry.disconnected("c") == (true, nil))
        #expect(registry.listing.map(\.name) == ["b"])
    }
}

/// Lets `parties` tasks wait for each other, round after round.
private actor Barrier {
    private let parties: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(parties: Int) { self.parties = parties }

    /// Waits until `parties` tasks have arrived.
    func arrive() async {
        arrived += 1
        if arrived == parties {
            arrived = 0
            let released = waiting
            waiting.removeAll()
            for continuation in released { continuation.resume() }
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}
