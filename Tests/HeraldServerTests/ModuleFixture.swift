import Foundation

/// Module folders written by the tests: a `module.toml` and an executable, most often ``script``, a small
/// Python module whose behaviour its arguments choose.
struct ModuleFixture {
    let directory: String

    /// A fresh modules directory.
    init() throws {
        directory = NSTemporaryDirectory() + "herald-modules-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Writes `<directory>/<name>/module.toml` (the `name`, `version` and `entry_point` lines come first,
    /// then `extra`) and the executable `entry_point` with `executable`'s text.
    func add(
        _ name: String, version: String = "1.0.0", entryPoint: String = "module.py", arguments: [String] = [],
        extra: String = "", executable: String? = ModuleFixture.script
    ) throws {
        let folder = directory + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let args = arguments.map { "\"\($0)\"" }.joined(separator: ", ")
        let manifest = """
            name = "\(name)"
            version = "\(version)"
            entry_point = "\(entryPoint)"
            args = [\(args)]
            \(extra)
            """
        try manifest.write(toFile: folder + "/module.toml", atomically: true, encoding: .utf8)
        if let executable {
            try executable.write(toFile: folder + "/" + entryPoint, atomically: true, encoding: .utf8)
            chmod(folder + "/" + entryPoint, 0o755)
        }
    }

    /// Replaces `name`'s manifest text.
    func writeManifest(_ name: String, _ text: String) throws {
        try text.write(toFile: directory + "/\(name)/module.toml", atomically: true, encoding: .utf8)
    }

    /// A file the module wrote into its `HERALD_DATA_DIR`, once it exists.
    static func written(_ dataDirectory: String, module: String, file: String) async throws -> String {
        let path = dataDirectory + "/module-data/\(module)/\(file)"
        while true {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.hasSuffix("\n") { return text }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A module in Python with only the standard library. It writes its environment to `env.json` in its
    /// data directory, says hello with `HERALD_TOKEN` (unless `--no-token`), subscribes to `--subscribe` (default `module.#`;
    /// `--no-load` skips it), answers pings (unless `--no-pong`: then it also hangs when the broker closes
    /// its connection), and writes each reply of `--publish TYPE` and `--also-subscribe PATTERN` to
    /// `replies.txt` and each event type it receives to `events.txt` (`--exit-after TYPE`: then exits 0 after
    /// recording TYPE).
    /// `--spam N` writes N bytes to stdout first; `--exit-after-load CODE` exits with CODE once loaded,
    /// after writing `--stderr TEXT`; `--ignore-term` ignores SIGTERM; `--fail-first` exits with 1 before
    /// its hello the first time it runs (a marker in its data directory), then runs normally;
    /// `--reconnect-after-load` closes its connection once loaded (writing `closed`) and connects again
    /// (`ready`) once a file `reconnect` appears in its data directory.
    /// `--load-when-told` loads (subscribes) only once a file `load` appears in its data directory.
    /// `--close-output` closes its standard output and error once loaded and waits for a file `go`, then
    /// writes `alive`.
    /// `--leave-child` forks, once loaded, a child that ignores SIGTERM, holds the connection and sleeps (its
    /// pid in `child.pid`); `--flood-child WORD` one that writes lines of WORD to standard output for ever.
    static let script = #"""
        #!/usr/bin/env python3
        import json, os, signal, socket, struct, sys

        args = sys.argv[1:]
        def option(name, default=None):
            return args[args.index(name) + 1] if name in args else default

        if "--ignore-term" in args:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        data = os.environ["HERALD_DATA_DIR"]
        def record(name, line):
            with open(os.path.join(data, name), "a") as f:
                f.write(line + "\n")

        if "--fail-first" in args and not os.path.exists(os.path.join(data, "failed-once")):
            record("failed-once", "yes")
            sys.exit(1)
        spam = int(option("--spam", "0"))
        line = ("x" * 99 + "\n").encode()
        while spam > 0:
            sys.stdout.buffer.write(line)
            spam -= len(line)
        if "--spam" in args:
            print("spam-done", flush=True)
        env = {k: v for k, v in os.environ.items() if k.startswith("HERALD_") or k == "FIXTURE"}
        env["args"] = args
        env["cwd"] = os.getcwd()
        with open(os.path.join(data, "env.json"), "w") as f:
            f.write(json.dumps(env) + "\n")

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(os.environ["HERALD_SOCKET"])
        buffer = b""
        def send(message):
            body = json.dumps(message).encode()
            sock.sendall(struct.pack(">I", len(body)) + body)
        def receive():
            global buffer
            while True:
                if len(buffer) >= 4:
                    (length,) = struct.unpack(">I", buffer[:4])
                    if len(buffer) >= 4 + length:
                        frame, buffer = buffer[4:4 + length], buffer[4 + length:]
                        return json.loads(frame)
                chunk = sock.recv(65536)
                if not chunk and "--no-pong" in args:
                    # A hung module: it neither answers nor notices that the broker closed its connection.
                    while True:
                        signal.pause()
                if not chunk:
                    sys.exit(0)
                buffer += chunk
        def request(message):
            send(message)
            while True:
                frame = receive()
                if frame.get("id") == message.get("id"):
                    return frame
                handle(frame)
        def handle(frame):
            if frame.get("op") == "ping" and "--no-pong" not in args:
                send({"op": "pong"})
            elif frame.get("op") == "event":
                record("events.txt", frame["event"]["event_type"])
                if frame["event"]["event_type"] == option("--exit-after"):
                    sys.exit(0)

        # The version its manifest (in the working directory, the module's folder) gives, as a real module's
        # build would say.
        version = "1.0.0"
        if os.path.exists("module.toml"):
            for manifest_line in open("module.toml"):
                if manifest_line.startswith("version"):
                    version = manifest_line.split('"')[1]
        hello = {"op": "hello", "id": 1, "protocol": 1,
                 "module": {"name": os.environ["HERALD_MODULE_NAME"], "version": version}}
        if "--no-token" not in args:
            hello["token"] = os.environ["HERALD_TOKEN"]
        request(hello)
        if "--load-when-told" in args:
            import time
            while not os.path.exists(os.path.join(data, "load")):
                time.sleep(0.01)
        if "--no-load" not in args:
            request({"op": "subscribe", "id": 2, "topics": [option("--subscribe", "module.#")]})
        if option("--also-subscribe"):
            reply = request({"op": "subscribe", "id": 3, "topics": [option("--also-subscribe")]})
            record("replies.txt", "subscribe " + reply.get("op") + " " + reply.get("code", ""))
        if option("--publish"):
            for number, event_type in enumerate(option("--publish").split(",")):
                reply = request({"op": "publish", "id": 10 + number, "event": {"event_type": event_type}})
                record("replies.txt", "publish " + event_type + " " + reply.get("op") + " " + reply.get("code", ""))
        if "--reconnect-after-load" in args:
            # Closes its connection and opens another once the test says the broker saw the close (a file
            # `reconnect`), as a client library does after an error. Reconnecting after a fixed pause raced
            # the broker: a new connection's hello handled before the old one's close is one module staying
            # connected, with nothing unloaded.
            sock.close()
            record("closed", "yes")
            import time
            while not os.path.exists(os.path.join(data, "reconnect")):
                time.sleep(0.01)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(os.environ["HERALD_SOCKET"])
            buffer = b""
            request({"op": "hello", "id": 1, "protocol": 1,
                     "module": {"name": os.environ["HERALD_MODULE_NAME"], "version": "1.0.0"},
                     "token": os.environ["HERALD_TOKEN"]})
            request({"op": "ready", "id": 2})
            record("replies.txt", "reconnected")
        if "--leave-child" in args:
            # A child that ignores SIGTERM and keeps the connection it inherited, as a helper process would.
            child = os.fork()
            if child == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                import time
                while True:
                    time.sleep(1)
            record("child.pid", str(child))
        if option("--flood-child"):
            # A child that writes to the module's output for ever, as a runaway helper would.
            if os.fork() == 0:
                line = (option("--flood-child") + "\n").encode() * 512
                while True:
                    os.write(1, line)
        if "--close-output" in args:
            # Closes its standard output and error and runs on (as a script that sends them to a file does),
            # writing `closed`; once a file `go` appears, it writes `alive`.
            os.close(1)
            os.close(2)
            record("closed", "yes")
            import time
            while not os.path.exists(os.path.join(data, "go")):
                time.sleep(0.01)
            record("alive", "yes")
        if option("--exit-after-load"):
            if option("--stderr"):
                print(option("--stderr"), file=sys.stderr, flush=True)
            sys.exit(int(option("--exit-after-load")))
        while True:
            handle(receive())
        """#
}
