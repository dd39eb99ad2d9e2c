import Foundation
import HeraldRabbitMQ
import Synchronization

/// A private RabbitMQ node (Debian's `rabbitmq-server`, which `make test-deps` installs) for one test: its
/// own directory, node name and ports, started by the test and stopped after it, so tests never depend on
/// or disturb a RabbitMQ the machine may run. `epmd`, which Erlang starts with the first node, is stopped
/// too when no node is left on it.
final class RabbitMQServer: Sendable {
    static let serverScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    static let pluginsScript = "/usr/lib/rabbitmq/bin/rabbitmq-plugins"
    static let controlScript = "/usr/lib/rabbitmq/bin/rabbitmqctl"

    let directory: String
    let port: Int
    let node: String
    private let distributionPort: Int
    private let process = Mutex<Process?>(nil)

    var url: String { "amqp://guest:guest@127.0.0.1:\(port)" }

    /// What RabbitMQ's scripts (`rabbitmq-server`, `rabbitmq-plugins`) need to find this node.
    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        let settings = [
            "HOME": directory, "RABBITMQ_NODENAME": node, "RABBITMQ_NODE_PORT": String(port),
            "RABBITMQ_DIST_PORT": String(distributionPort), "RABBITMQ_MNESIA_BASE": directory + "/mnesia",
            "RABBITMQ_LOG_BASE": directory + "/log", "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": directory + "/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": directory + "/rabbitmq",
            "RABBITMQ_ADVANCED_CONFIG_FILE": directory + "/advanced.config",
            "RABBITMQ_PLUGINS_EXPAND_DIR": directory + "/plugins-expand", "RABBITMQ_PID_FILE": directory + "/pid",
            "RABBITMQ_CONF_ENV_FILE": directory + "/rabbitmq-env.conf",
        ]
        environment.merge(settings) { $1 }
        return environment
    }

    private init() throws {
        directory = NSTemporaryDirectory() + "herald-rabbitmq-" + UUID().uuidString.prefix(8)
        port = try freePort()
        distributionPort = try freePort()
        node = "herald-test-\(port)@localhost"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "[].\n".write(toFile: directory + "/enabled_plugins", atomically: true, encoding: .utf8)
        try "loopback_users = none\n".write(toFile: directory + "/rabbitmq.conf", atomically: true, encoding: .utf8)
    }

    /// Starts a new node and waits until it takes AMQP connections.
    static func start() async throws -> RabbitMQServer {
        guard FileManager.default.isExecutableFile(atPath: serverScript) else {
            throw RabbitMQServerError("\(serverScript) is missing: `make test-deps` installs rabbitmq-server")
        }
        let server = try RabbitMQServer()
        try await server.start()
        return server
    }

    /// Runs `body` with a fresh node, stopping it and removing its directory afterwards.
    static func with<Result>(_ body: (RabbitMQServer) async throws -> Result) async throws -> Result {
        let server = try await start()
        do {
            let result = try await body(server)
            try await server.stop(removing: true)
            return result
        } catch {
            try? await server.stop(removing: true)
            throw error
        }
    }

    /// Starts the node (again, after `stop`, with the queues and messages it kept).
    func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.serverScript)
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let logPath = directory + "/server.log"
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try output.seekToEnd()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.process.withLock { $0 = process }
        let deadline = ContinuousClock.now + .seconds(90)
        while true {
            if let connection = try? AMQPConnection(url: url, timeoutMs: 1000) {
                connection.close()
                return
            }
            guard process.isRunning else {
                throw RabbitMQServerError("rabbitmq-server exited at start: \(logTail)")
            }
            guard ContinuousClock.now < deadline else {
                throw RabbitMQServerError("rabbitmq-server did not take connections within 90 s: \(logTail)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Stops the node cleanly (`rabbitmqctl stop`, which waits until the VM is gone; a signal would not
    /// do, since the node inherits the test process's blocked signals) and waits for its script to exit.
    func stop(removing: Bool = false) async throws {
        let pid = (try? String(contentsOfFile: directory + "/pid", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let control = controlProcess(["stop"])
        control.standardOutput = FileHandle.nullDevice
        control.standardError = FileHandle.nullDevice
        try control.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while control.isRunning || pid.map(Self.isAlive) == true {
            if ContinuousClock.now > deadline, let pid {
                kill(pid, SIGKILL)
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        // The script that started the VM may wait on for its signals; it has nothing left to do.
        if let process = process.withLock({ $0 }), process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        }
        if removing {
            stopIdleEPMD()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Runs `rabbitmqctl` on this node (`set_vm_memory_high_watermark 0` raises a memory alarm at once, which
    /// blocks every publishing connection) and waits for it; throws when it fails.
    func control(_ arguments: [String]) async throws {
        let control = controlProcess(arguments)
        let output = Pipe()
        control.standardOutput = output
        control.standardError = output
        try control.run()
        let text = await onOwnThread {
            String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        while control.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard control.terminationStatus == 0 else {
            throw RabbitMQServerError("rabbitmqctl \(arguments.joined(separator: " ")): \(text)")
        }
    }

    /// `rabbitmqctl` for this node, not started yet.
    private func controlProcess(_ arguments: [String]) -> Process {
        let control = Process()
        control.executableURL = URL(fileURLWithPath: Self.controlScript)
        control.arguments = ["-n", node] + arguments
        control.environment = environment
        return control
    }

    /// Whether `pid` runs: it exists and is not a zombie (the VM may be this process's child, which
    /// `Process` reaps only when it looks).
    private static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// `epmd -kill` stops the Erlang port mapper only when no node is registered with it.
    private func stopIdleEPMD() {
        let names = Process()
        names.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        names.arguments = ["epmd", "-names"]
        let pipe = Pipe()
        names.standardOutput = pipe
        names.standardError = FileHandle.nullDevice
        guard (try? names.run()) != nil else { return }
        let listing = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        names.waitUntilExit()
        guard !listing.contains("name ") else { return }
        let kill = Process()
        kill.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        kill.arguments = ["epmd", "-kill"]
        kill.standardOutput = FileHandle.nullDevice
        kill.standardError = FileHandle.nullDevice
        try? kill.run()
        kill.waitUntilExit()
    }

    private var logTail: String {
        let text = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(5).joined(separator: " | ")
    }

    /// A plain AMQP client on this node, used from a thread of its own (its calls block).
    func client() throws -> AMQPConnection {
        try AMQPConnection(url: url)
    }
}

struct RabbitMQServerError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}

/// A TCP port nothing listens on right now, below the kernel's ephemeral range (32768 and up on Linux): a port
/// the kernel picked for "any free port" is one it may give next to another test's outgoing connection,
/// before the RabbitMQ node binds it (a node once failed with `dist_port_already_used … not_erlang`).
func freePort() throws -> Int {
    for _ in 0..<100 {
        let candidate = UInt16.random(in: 20_000..<32_768)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = candidate.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if bound == 0 { return Int(candidate) }
    }
    throw RabbitMQServerError("no free port from 20000 to 32767 in 100 tries: errno \(errno)")
}

extension RabbitMQServer {
    /// Runs `body` with a plain AMQP connection to this node on a thread of its own, closing it after.
    func withClient<Value: Sendable>(_ body: @escaping @Sendable (AMQPConnection) throws -> Value) async throws
        -> Value
    {
        let url = self.url
        return try await onOwnThread {
            let connection = try AMQPConnection(url: url)
            defer { connection.close() }
            return try body(connection)
        }
    }

    /// Consumes `queue` until `count` messages arrived (acknowledging each) or `seconds` passed without
    /// one, and returns them in arrival order.
    func take(_ count: Int, from queue: String, seconds: Int = 30) async throws -> [AMQPConnection.Message] {
        try await withClient { connection in
            try connection.setPrefetch(500)
            try connection.consume(queue)
            var messages: [AMQPConnection.Message] = []
            while messages.count < count, let message = try connection.nextMessage(timeoutMs: seconds * 1000) {
                messages.append(message)
                try connection.ack(message.deliveryTag)
            }
            return messages
        }
    }
}
