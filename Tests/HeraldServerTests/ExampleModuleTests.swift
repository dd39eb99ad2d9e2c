import Foundation
import Testing

@testable import HeraldServer

/// The example modules of `Examples/` against a real broker: each sees two blocks, prints them, and publishes
/// `example.block_seen` for each.
@Suite(.timeLimit(.minutes(3)))
struct ExampleModuleTests {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private static let python = Self.root.appendingPathComponent("Examples/python-module/module.py").path
    private static let swiftModule = URL(fileURLWithPath: HeraldRun.executable).deletingLastPathComponent()
        .appendingPathComponent("example-swift-module").path

    @Test(arguments: ["python", "swift"])
    func theExampleSeesABlockAndSaysSo(_ language: String) async throws {
        let broker = try await TestBroker.start()
        let module = "example-\(language)"
        let environment = ["HERALD_SOCKET": broker.socketPath, "PATH": "/usr/bin:/bin:/usr/local/bin"]
        let run =
            language == "python"
            ? try HeraldRun.start(
                ["python3", Self.python, "--count", "2"], environment: environment, program: "/usr/bin/env")
            : try HeraldRun.start(["--count", "2"], environment: environment, program: Self.swiftModule)
        // Once it is subscribed, a block reaches it; a watcher sees what it publishes in return.
        try await waitUntil { broker.broker.bus.subscribers(for: "block.new") == [module] }
        try await broker.withModule("watcher") { (watcher: inout Conversation) async throws in
            _ = try await watcher.request(##"{"op":"subscribe","id":1,"topics":["example.#"]}"##)
            // Any JSON value may be a payload, and a block may have no chain: the Python example crashed on
            // this one, and both said chain 0 for it.
            _ = try await watcher.request(
                #"{"op":"publish","id":3,"event":{"event_type":"block.new","event_id":"b-odd","payload":[1]}}"#)
            let odd = try #require(try await watcher.receive())
            #expect(odd.contains(#""block_event_id":"b-odd""#))
            #expect(!odd.contains(#""chain_id""#))
            #expect(!odd.contains(#""block_number":"#) || odd.contains(#""block_number":null"#))
            _ = try await watcher.request(
                #"{"op":"publish","id":2,"event":{"event_type":"block.new","event_id":"b-7","chain_id":138,"payload":{"block_number":7,"hash":"0x7","transaction_count":1}}}"#
            )
            let seen = try #require(try await watcher.receive())
            #expect(seen.contains(#""event_type":"example.block_seen""#))
            #expect(seen.contains(#""chain_id":138"#))
            #expect(seen.contains(#""block_event_id":"b-7""#))
            #expect(seen.contains(#""block_number":7"#))
            #expect(seen.contains(#""producer":"\#(module)""#))
        }
        let (status, printed, _) = await run.finishWithOutput()
        #expect(status == 0)
        #expect(printed.contains("block 7 on chain 138 (b-7)"))
        #expect(printed.contains("(b-odd)"))
        try await broker.stop()
    }
}
