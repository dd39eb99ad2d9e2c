import Dispatch
import Foundation
import HeraldClient
import HeraldServer
import Testing

/// `herald serve` as users and scripts run it (PROTOCOL.md §8): the executable built next to these tests.
@Suite(.timeLimit(.minutes(3)))
final class ServeTests {
    /// The directories this test made, removed when it ends (each test has an instance of its own).
    private var directories: [String] = []

    deinit {
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
    }

    private func temporaryDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "herald-serve-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        directories.append(directory)
        return directory
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func runsWithNoFilePrintsTheReadyLineAndStopsCleanly(_ signal: Int32) async throws {
        let directory = try temporaryDirectory()
        // Any free HTTP port: the default 7480 would collide between the test's two runs.
        let run = try HeraldRun.start(["serve", "--http", "127.0.0.1:0"], in: directory)
        let line = try #require(await run.firstLine())
        #expect(line.hasPrefix("herald ready socket=./herald-data/herald.sock http=127.0.0.1:"))
        #expect(Int(line.split(separator: ":").last ?? "").map { $0 > 0 } == true)
        #expect(FileManager.default.fileExists(atPath: directory + "/herald-data/herald.sock"))
        kill(run.process.processIdentifier, signal)
        let (status, errors) = await run.finish()
        #expect(status == 0)
        #expect(!FileManager.default.fileExists(atPath: directory + "/herald-data/herald.sock"))
        // The executable's malloc is jemalloc's, as Package.swift links it (docs/benchmarks.md, "Allocator").
        #expect(errors.contains("allocator=jemalloc 5."))
    }

    @Test func withEveryHousekeepingIntervalOffTheBrokerKeepsServing() async throws {
        let directory = try temporaryDirectory()
        let toml = "[housekeeping]\ncleanup_interval_ms = 0\nhealth_check_interval_ms = 0\ndisk_check_interval_ms = 0\n"
        try toml.write(toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let run = try HeraldRun.start(["serve", "--http", "127.0.0.1:0"], in: directory)
        _ = try #require(await run.firstLine())
        // Still serving after its ready line: a request is answered.
        let stats = try HeraldRun.start(["stats", "--socket", directory + "/herald-data/herald.sock"])
        #expect(await stats.finishWithOutput().status == 0)
        kill(run.process.processIdentifier, SIGTERM)
        let (status, errors) = await run.finish()
        #expect(status == 0)
        #expect(!errors.contains("finished unexpectedly"))
    }

    @Test func serveRaisesItsOpenFilesLimitAndStartsModulesWithTheOneItHad() async throws {
        let directory = try temporaryDirectory()
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("plain")
        var own = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &own)
        let hard = own.rlim_max == rlim_t.max ? rlim_t(1 << 20) : own.rlim_max
        try #require(hard > 256)
        // Started with a soft limit of 256, as a stock system's 1 024 would be too few for 10 000 sockets.
        let run = try HeraldRun.start(
            [
                "--nofile=256:\(own.rlim_max == rlim_t.max ? "unlimited" : String(own.rlim_max))", HeraldRun.executable,
                "serve", "--http", "127.0.0.1:0", "--modules-dir", modules.directory,
            ], in: directory, program: "/usr/bin/prlimit")
        let line = try #require(await run.firstLine())
        let http = String(try #require(line.split(separator: " ").last { $0.hasPrefix("http=") }).dropFirst(5))
        // The modules start after the ready line: wait until the module runs.
        var module: Int?
        while module == nil {
            let listed = try await HeraldHTTPClient(address: http).get("/v1/modules")
            let rows = try #require(
                (try JSONSerialization.jsonObject(with: Data(listed.text.utf8)) as? [String: Any])?["modules"]
                    as? [[String: Any]])
            module = rows.first?["pid"] as? Int
            if module == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        func openFiles(_ pid: Int32) throws -> [Substring] {
            let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
            let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
            return line.split(separator: " ").dropFirst(3).prefix(2).map { $0 }
        }
        #expect(try openFiles(run.process.processIdentifier) == ["\(hard)", "\(hard)"].map { Substring($0) })
        #expect(try openFiles(Int32(module!)).first == "256")
        kill(run.process.processIdentifier, SIGTERM)
        let (status, errors) = await run.finish()
        #expect(status == 0)
        #expect(errors.contains("open_files=\(hard) open_files.before=256"))
    }

    /// Ctrl-C twice: a second SIGTERM during the shutdown stops waiting for modules and connections (ten
    /// minutes here, for a module that ignores SIGTERM): it exits at once, and cleanly. Without it the exit
    /// would come after the test's deadline (``HeraldRun/finish()`` kills it then, and the status is not 0).
    @Test func aSecondSignalEndsTheShutdownsWaiting() async throws {
        let directory = try temporaryDirectory()
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("stubborn", arguments: ["--ignore-term"])
        try "[modules]\nshutdown_timeout_ms = 600000\n".write(
            toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let run = try HeraldRun.start(
            ["serve", "--http", "127.0.0.1:0", "--modules-dir", modules.directory], in: directory)
        let line = try #require(await run.firstLine())
        let http = String(try #require(line.split(separator: " ").last { $0.hasPrefix("http=") }).dropFirst(5))
        let client = HeraldHTTPClient(address: http)
        // The module runs once it is listed running.
        while try await !client.get("/v1/modules").text.contains(#""state":"running""#) {
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(run.process.processIdentifier, SIGTERM)
        // The shutdown has begun once the socket refuses connections.
        while IPCListener.acceptsConnections(unixSocket: directory + "/herald-data/herald.sock") {
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(run.process.processIdentifier, SIGTERM)
        let (status, errors) = await run.finish()
        #expect(status == 0)
        #expect(errors.contains("second signal: stopping now"))
    }

    /// The HTTP listener stops last: while the IPC connections drain, probes and operators still get answers
    /// (`/readyz` 503), and it stops once the last connection left. It used to stop right after the
    /// supervisor, refusing connections while the IPC socket's grace period ran.
    @Test func httpServesUntilTheIPCConnectionsHaveDrained() async throws {
        let directory = try temporaryDirectory()
        try "[modules]\nshutdown_timeout_ms = 600000\n".write(
            toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let run = try HeraldRun.start(["serve", "--http", "127.0.0.1:0"], in: directory)
        let line = try #require(await run.firstLine())
        let http = String(try #require(line.split(separator: " ").last { $0.hasPrefix("http=") }).dropFirst(5))
        let socket = directory + "/herald-data/herald.sock"
        do {
            let peer = try BlockingPeer(path: socket)
            #expect(try await HeraldHTTPClient(address: http).get("/readyz").status == 200)
            kill(run.process.processIdentifier, SIGTERM)
            // The shutdown has begun once the socket refuses connections; the peer's connection drains.
            while IPCListener.acceptsConnections(unixSocket: socket) {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await HeraldHTTPClient(address: http).get("/readyz").status == 503)
            withExtendedLifetime(peer) {}
        }
        // The peer closed its connection: the drain is over, and the broker exits.
        let (status, _) = await run.finish()
        #expect(status == 0)
    }

    @Test func flagsOverrideTheFile() async throws {
        let directory = try temporaryDirectory()
        try "data_dir = \"from-file\"\n[ipc]\nmax_frame = 8192\n".write(
            toFile: directory + "/herald.toml",
            atomically: true,
            encoding: .utf8
        )
        let run = try HeraldRun.start(
            ["serve", "--print-config", "--socket", "/tmp/flag.sock", "--ipc-tcp", "127.0.0.1:7471"],
            in: directory
        )
        let (status, _) = await run.finish()
        let printed = String(decoding: run.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(status == 0)
        #expect(printed.contains("data_dir = \"from-file\"\n"))
        #expect(printed.contains("socket = \"/tmp/flag.sock\"\n"))
        #expect(printed.contains("max_frame = 8192\n"))
        #expect(printed.contains("tcp = \"127.0.0.1:7471\"\n"))
    }

    @Test func aSecondBrokerOnALiveSocketExitsBeforeStartingAnything() async throws {
        let directory = try temporaryDirectory()
        let first = try HeraldRun.start(["serve", "--http", "127.0.0.1:0"], in: directory)
        _ = try #require(await first.firstLine())
        let socket = directory + "/herald-data/herald.sock"
        let second = try HeraldRun.start(
            ["serve", "--http", "127.0.0.1:0", "--data-dir", directory + "/other", "--socket", socket], in: directory)
        #expect(await second.firstLine() == nil)
        let (status, errors) = await second.finish()
        #expect(status == 2)
        #expect(
            errors.hasSuffix(
                "herald: ipc.socket: \(socket) is in use: a broker (or another program) accepts connections on it\n"))
        #expect(!errors.contains("shutting down"))
        // The first still has its socket.
        #expect(IPCListener.acceptsConnections(unixSocket: socket))
        kill(first.process.processIdentifier, SIGTERM)
        #expect(await first.finish().status == 0)
    }

    @Test func aPortInUseIsRefusedBeforeAnythingStartsOrIsStored() async throws {
        let directory = try temporaryDirectory()
        let first = try HeraldRun.start(["serve", "--http", "127.0.0.1:0"], in: directory)
        let ready = try #require(await first.firstLine())
        let taken = try #require(ready.split(separator: "http=").last.map(String.init))
        let second = try HeraldRun.start(["serve", "--http", taken, "--data-dir", directory + "/other"], in: directory)
        #expect(await second.firstLine() == nil)
        let (status, errors) = await second.finish()
        #expect(status == 2)
        #expect(errors.hasSuffix("herald: http.listen: cannot listen on \(taken): Address already in use\n"))
        #expect(!errors.contains("shutting down"))
        // Nothing was opened or stored: no log, no socket.
        #expect(!FileManager.default.fileExists(atPath: directory + "/other/log"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/other/herald.sock"))
        kill(first.process.processIdentifier, SIGTERM)
        #expect(await first.finish().status == 0)
    }

    @Test func aSocketThatCannotBeMadeIsRefusedBeforeAnythingStarts() async throws {
        let directory = try temporaryDirectory()
        try "not a socket".write(toFile: directory + "/plain", atomically: true, encoding: .utf8)
        for (socket, message) in [
            (
                directory + "/missing/h.sock",
                "herald: ipc.socket: \(directory)/missing is not a directory, so \(directory)/missing/h.sock cannot be made\n"
            ),
            (
                directory + "/plain",
                "herald: ipc.socket: \(directory)/plain exists and is not a socket; the broker will not replace it\n"
            ),
        ] {
            let run = try HeraldRun.start(
                ["serve", "--http", "127.0.0.1:0", "--data-dir", directory + "/data", "--socket", socket], in: directory
            )
            #expect(await run.firstLine() == nil)
            let (status, errors) = await run.finish()
            #expect(status == 2)
            #expect(errors.hasSuffix(message))
            #expect(!FileManager.default.fileExists(atPath: directory + "/data/log"))
        }
        let same = try HeraldRun.start(
            ["serve", "--http", "127.0.0.1:7599", "--ipc-tcp", "127.0.0.1:7599"], in: directory)
        let (status, errors) = await same.finish()
        #expect(status != 0)
        #expect(
            errors
                == "herald: configuration: ipc.tcp: 127.0.0.1:7599 is also http.listen; the two listeners need two ports\n"
        )
    }

    @Test(arguments: [
        (["--modules-dir", ""], "herald: configuration: modules.dir: must not be empty\n"),
        (["--data-dir", ""], "herald: configuration: data_dir: must not be empty\n"),
        (["--http", "127.0.0.1:+80"], "herald: configuration: http.listen: must be host:port\n"),
        (
            ["--socket", "/tmp/" + String(repeating: "s", count: 120)],
            "herald: configuration: ipc.socket: /tmp/\(String(repeating: "s", count: 120)) is 125 bytes; a Unix socket's path may have at most 107\n"
        ),
    ])
    func flagsAreCheckedAsTheFileIs(_ flags: [String], _ message: String) async throws {
        let directory = try temporaryDirectory()
        for printing in [false, true] {
            let run = try HeraldRun.start(["serve"] + flags + (printing ? ["--print-config"] : []), in: directory)
            let (status, errors) = await run.finish()
            #expect(status != 0)
            #expect(errors == message)
        }
    }

    @Test func aBadTCPAddressFlagIsRefusedNamingTheKey() async throws {
        let directory = try temporaryDirectory()
        let run = try HeraldRun.start(["serve", "--ipc-tcp", "7471"], in: directory)
        let (status, errors) = await run.finish()
        #expect(status != 0)
        #expect(errors == "herald: configuration: ipc.tcp: must be host:port, or empty for no TCP listener\n")
    }

    @Test(arguments: [
        ("[ipc]\nmaxframe = 1\n", "herald: configuration: ipc.maxframe: unknown key"),
        (
            "[ipc]\nmax_frame = \"big\"\n",
            "herald: configuration: ipc.max_frame: must be an integer from 4096 to 67108864"
        ),
        (
            "[modules]\nstartup_timeout_ms = 0\n",
            "herald: configuration: modules.startup_timeout_ms: must be an integer from 1 to 3600000"
        ),
        (
            "[http]\nlisten = \"0.0.0.0:7480\"\n",
            "herald: configuration: http.listen: 0.0.0.0:7480 is not a loopback address; configure [[auth.tokens]] before exposing the broker"
        ),
    ])
    func aBadConfigurationExitsBeforeTheReadyLineNamingTheKey(_ toml: String, _ message: String) async throws {
        let directory = try temporaryDirectory()
        try toml.write(toFile: directory + "/custom.toml", atomically: true, encoding: .utf8)
        let run = try HeraldRun.start(["serve", "--config", "custom.toml"], in: directory)
        #expect(await run.firstLine() == nil)
        let (status, errors) = await run.finish()
        #expect(status != 0)
        #expect(errors == message + "\n")
    }

    @Test(arguments: [
        ("absent.toml", "does not exist"), (".", "is a directory, not a file"),
        // A device would be read for ever (a FIFO would wait for a writer).
        ("/dev/zero", "is not a regular file"),
    ])
    func aConfigurationFileThatCannotBeReadIsNamedWithWhy(file: String, why: String) async throws {
        let directory = try temporaryDirectory()
        let run = try HeraldRun.start(["serve", "--config", file], in: directory)
        let (status, errors) = await run.finish()
        #expect(status != 0)
        #expect(errors == "herald: configuration: \(file): cannot be read: \(why)\n")
    }
}
