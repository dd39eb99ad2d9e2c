import Foundation
import HeraldCore
import Testing

@testable import HeraldServer

@Suite struct HeraldConfigurationTests {
    /// PROTOCOL.md §8's example file, as a user would copy it.
    static let example = """
        data_dir = "./herald-data"
        validate_payloads = false

        [ipc]
        socket = ""                  # default <data_dir>/herald.sock
        tcp = ""                     # e.g. "127.0.0.1:7471"; off when empty
        max_frame = 1048576
        heartbeat_ms = 10000
        max_subscriptions = 256
        publish_rate = 0             # events per second per connection; 0 = unlimited

        [http]
        listen = "127.0.0.1:7480"

        [log]
        partitions = 8
        fsync = "batch"              # always | batch | never
        persist = ["#"]
        retention_days = 7
        retention_bytes = 10737418240
        dedup_window_ms = 120000

        [groups]
        ack_wait_ms = 30000
        max_deliver = 4
        backoff_ms = [1000, 2000, 4000]
        max_in_flight = 1000
        lag_alert_events = 1000
        lag_alert_ms = 300000

        [modules]
        dir = "./modules"
        startup_timeout_ms = 30000
        shutdown_timeout_ms = 5000

        [[auth.tokens]]              # none by default
        name = "explorer-ui"
        token = "a-long-random-secret"
        publish = ["notification"]
        subscribe = ["#"]
        """

    @Test func anEmptyFileGivesTheDefaults() throws {
        let configuration = try HeraldConfiguration().applying(toml: "")
        #expect(configuration == HeraldConfiguration())
        #expect(configuration.socketPath == "./herald-data/herald.sock")
        #expect(configuration.http.listen == "127.0.0.1:7480")
        #expect(configuration.modules.directory == "./modules")
        #expect(configuration.tokens.isEmpty)
        #expect(throws: Never.self) { try configuration.validate() }
    }

    @Test func theProtocolsExampleIsTheDefaultsPlusOneToken() throws {
        let configuration = try HeraldConfiguration().applying(toml: Self.example)
        var expected = HeraldConfiguration()
        expected.tokens = [
            .init(
                name: "explorer-ui",
                secret: "a-long-random-secret",
                publish: [try TopicPattern("notification")],
                subscribe: [try TopicPattern("#")]
            )
        ]
        #expect(configuration == expected)
    }

    @Test func appliesEveryKindOfValue() throws {
        let configuration = try HeraldConfiguration().applying(
            toml: """
                data_dir = "/var/lib/herald"
                validate_payloads = true
                [ipc]
                socket = "/run/herald.sock"
                tcp = "127.0.0.1:7471"
                publish_rate = 5000
                [log]
                fsync = "always"
                persist = ["block.#", "#.138"]
                retention_bytes = 0
                linger_ms = 0
                [groups]
                backoff_ms = [10, 20]
                """
        )
        #expect(configuration.log.lingerMs == 0)
        #expect(configuration.logConfiguration.lingerMilliseconds == 0)
        #expect(HeraldConfiguration().log.lingerMs == 5)
        #expect(configuration.dataDirectory == "/var/lib/herald")
        #expect(configuration.validatePayloads)
        #expect(configuration.socketPath == "/run/herald.sock")
        #expect(configuration.ipc.tcp == "127.0.0.1:7471")
        #expect(configuration.ipc.publishRate == 5000)
        #expect(configuration.log.fsync == .always)
        #expect(configuration.log.persist == ["block.#", "#.138"])
        #expect(configuration.log.retentionBytes == 0)
        #expect(configuration.groups.backoffMs == [10, 20])
        // Untouched keys keep their defaults.
        #expect(configuration.ipc.maxFrame == 1_048_576)
    }

    @Test func printedConfigurationReadsBackTheSame() throws {
        var configuration = HeraldConfiguration()
        configuration.dataDirectory = "/data/with \"quotes\" and \\ backslash"
        configuration.log.persist = []
        configuration.groups.backoffMs = [5]
        configuration.log.fsync = .never
        let printed = configuration.tomlDescription
        #expect(try HeraldConfiguration().applying(toml: printed) == configuration)
        #expect(printed.contains("[ipc]\nsocket = \"\"\n"))
    }

    @Test(arguments: [
        "amqp://guest:guest@127.0.0.1:5672", "amqp://h", "amqp://h/", "amqp://u:p%40ss@h:5672/%2f",
        "amqp://[::1]:5672/v",
        "amqp://h/prod",
    ])
    func urlsLibrabbitmqReadsAreAccepted(url: String) {
        #expect(HeraldConfiguration.amqpURLProblem(url) == nil)
    }

    @Test func printedConfigurationRedactsSecrets() throws {
        let configuration = try HeraldConfiguration().applying(toml: Self.example)
        let printed = configuration.tomlDescription
        #expect(!printed.contains("a-long-random-secret"))
        #expect(printed.contains("[[auth.tokens]]\nname = \"explorer-ui\"\ntoken = \"(redacted)\""))
        // Every key, defaults included.
        #expect(printed.contains("subscribe = [\"#\"]\nadmin = false\n"))
    }

    @Test(arguments: [
        ("colour = 1", "configuration: colour: unknown key"),
        ("[ipc]\nmaxframe = 1", "configuration: ipc.maxframe: unknown key"),
        ("[database]\nurl = \"x\"", "configuration: database: unknown key"),
        ("ipc = 5", "configuration: ipc: must be a table"),
        ("[ipc]\nmax_frame = \"big\"", "configuration: ipc.max_frame: must be an integer from 4096 to 67108864"),
        ("[ipc]\nmax_frame = 100", "configuration: ipc.max_frame: must be an integer from 4096 to 67108864"),
        ("[ipc]\nheartbeat_ms = 1.5", "configuration: ipc.heartbeat_ms: must be an integer from 100 to 3600000"),
        ("[ipc]\ntcp = \"7471\"", "configuration: ipc.tcp: must be host:port, or empty for none"),
        ("validate_payloads = \"yes\"", "configuration: validate_payloads: must be true or false"),
        ("data_dir = \"\"", "configuration: data_dir: must not be empty"),
        ("data_dir = 7", "configuration: data_dir: must be a string"),
        ("[http]\nlisten = \"localhost\"", "configuration: http.listen: must be host:port"),
        ("[log]\nfsync = \"sometimes\"", #"configuration: log.fsync: must be "always", "batch" or "never""#),
        ("[log]\npersist = \"#\"", "configuration: log.persist: must be an array of topic patterns"),
        (
            "[log]\npersist = [\"block.*x\"]",
            "configuration: log.persist[0]: pattern 'block.*x': '*' and '#' must be whole words"
        ),
        ("[log]\npartitions = 0", "configuration: log.partitions: must be an integer from 1 to 1024"),
        ("[log]\nlinger_ms = 60001", "configuration: log.linger_ms: must be an integer from 0 to 60000"),
        ("[groups]\nbackoff_ms = []", "configuration: groups.backoff_ms: must be a non-empty array of integers"),
        (
            "[groups]\nbackoff_ms = [1, -2]",
            "configuration: groups.backoff_ms[1]: must be an integer from 0 to 86400000"
        ),
        ("[auth]\nusers = []", "configuration: auth.users: unknown key"),
        ("[[auth.tokens]]\ntoken = \"s\"", "configuration: auth.tokens[0].name: required, a non-empty string"),
        (
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"s\"\nadmin = \"yes\"",
            "configuration: auth.tokens[0].admin: must be true or false"
        ),
        (
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"s\"\nowner = true",
            "configuration: auth.tokens[0].owner: unknown key"
        ),
        (
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"s\"\nsubscribe = [\"Bad\"]",
            "configuration: auth.tokens[0].subscribe[0]: pattern 'Bad': words are lowercase letters, digits and '_'"
        ),
        (
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"s\"\n[[auth.tokens]]\nname = \"a\"\ntoken = \"t\"",
            "configuration: auth.tokens[1].name: 'a' is used by another token"
        ),
        (
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"s\"\n[[auth.tokens]]\nname = \"b\"\ntoken = \"s\"",
            "configuration: auth.tokens[1].token: is the same secret as another token's"
        ),
        (
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"(redacted)\"\n[[auth.tokens]]\nname = \"b\"\ntoken = \"(redacted)\"",
            "configuration: auth.tokens[1].token: is the same secret as another token's (as --print-config writes every secret: put them back)"
        ),
        (
            "[bridge.kafka]\nurl = \"x\"",
            "configuration: bridge.kafka: unknown key (the bridge there is: [bridge.rabbitmq])"
        ),
        ("[bridge.rabbitmq]\nhost = \"x\"", "configuration: bridge.rabbitmq.host: unknown key"),
        (
            "[bridge.rabbitmq]\nurl = \"amqps://h\"",
            "configuration: bridge.rabbitmq.url: amqps:// is not supported (TLS): use amqp://"
        ),
        (
            "[bridge.rabbitmq]\nurl = \"http://h\"",
            "configuration: bridge.rabbitmq.url: must be an amqp:// URL: amqp://user:password@host:port/vhost"
        ),
        (
            "[bridge.rabbitmq]\nurl = \"amqp://user:TopS3cret@127.0.0.1:99999/%2f\"",
            "configuration: bridge.rabbitmq.url: the port must be a number from 1 to 65535"
        ),
        (
            "[bridge.rabbitmq]\nurl = \"amqp://h:abc\"",
            "configuration: bridge.rabbitmq.url: the port must be a number from 1 to 65535"
        ),
        (
            "[bridge.rabbitmq]\nurl = \"amqp://h/a/b\"",
            "configuration: bridge.rabbitmq.url: the vhost must be one path segment (write / inside it as %2f)"
        ),
        (
            "[bridge.rabbitmq]\nurl = \"amqp://h:5672?heartbeat=5\"",
            "configuration: bridge.rabbitmq.url: must not have a query or a fragment"
        ),
        (
            "[bridge.rabbitmq]\nurl = \"amqp://h/%zz\"",
            "configuration: bridge.rabbitmq.url: the vhost is not valid percent-encoding"
        ),
        (
            "[bridge.rabbitmq]\nurl = \"amqp://[::1\"",
            "configuration: bridge.rabbitmq.url: an IPv6 host must end with ]"
        ),
        ("[bridge.rabbitmq]\nurl = \"amqp://u:p@\"", "configuration: bridge.rabbitmq.url: has no host"),
        (
            "[bridge.rabbitmq]\nbroker_id = \"rabbitmq\"",
            "configuration: bridge.rabbitmq.broker_id: 'rabbitmq' is the origin given to messages of publishers that are not Herald brokers"
        ),
        (
            "[bridge.rabbitmq]\nexchange = \"amq.topic\"",
            "configuration: bridge.rabbitmq.exchange: names starting with 'amq.' are reserved by RabbitMQ"
        ),
        (
            "[bridge.rabbitmq]\nstart = \"now\"",
            #"configuration: bridge.rabbitmq.start: must be "latest" or "earliest""#
        ),
        (
            "[bridge.rabbitmq]\nbroker_id = \"a b\"",
            "configuration: bridge.rabbitmq.broker_id: must be 1 to 64 of [A-Za-z0-9_.-], or empty"
        ),
        (
            "[bridge.rabbitmq]\nreconnect_min_ms = 500\nreconnect_max_ms = 100",
            "configuration: bridge.rabbitmq.reconnect_max_ms: must not be less than reconnect_min_ms"
        ),
        (
            "[[bridge.rabbitmq.consume]]\npatterns = [\"#\"]",
            "configuration: bridge.rabbitmq.consume[0].queue: required, a non-empty string"
        ),
        (
            "[[bridge.rabbitmq.consume]]\nqueue = \"q\"\npatterns = []",
            "configuration: bridge.rabbitmq.consume[0].patterns: required, a non-empty array of topic patterns"
        ),
        (
            "[[bridge.rabbitmq.consume]]\nqueue = \"q\"\npatterns = [\"#\"]\n[[bridge.rabbitmq.consume]]\nqueue = \"q\"\npatterns = [\"a\"]",
            "configuration: bridge.rabbitmq.consume[1].queue: 'q' is consumed by another entry"
        ),
    ])
    func refusesBadConfigurationNamingTheKey(_ toml: String, _ message: String) {
        do {
            _ = try HeraldConfiguration().applying(toml: toml)
            Issue.record("accepted: \(toml)")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func aBridgeSectionIsReadPrintedWithoutItsPasswordAndReadBack() throws {
        let toml = """
            [bridge.rabbitmq]
            url = "amqp://herald:s3cret@mq.internal:5672/prod"
            publish = ["block.#", "transaction.#"]
            broker_id = "node-a"
            start = "earliest"

            [[bridge.rabbitmq.consume]]
            queue = "node-a.in"
            patterns = ["#"]
            prefetch = 64

            [[bridge.rabbitmq.consume]]
            queue = "herald.group.indexer.0"
            patterns = ["block.#"]
            declare = false
            """
        let configuration = try HeraldConfiguration().applying(toml: toml)
        let bridge = try #require(configuration.bridge)
        #expect(bridge.url == "amqp://herald:s3cret@mq.internal:5672/prod")
        #expect(bridge.exchange == "herald.events")
        #expect(bridge.publish == ["block.#", "transaction.#"])
        #expect(bridge.start == "earliest")
        #expect(bridge.consume.map(\.queue) == ["node-a.in", "herald.group.indexer.0"])
        #expect(bridge.consume.map(\.prefetch) == [64, 256])
        #expect(bridge.consume.map(\.declare) == [true, false])
        #expect(configuration.changedSections == ["bridge"])
        let printed = configuration.tomlDescription
        #expect(!printed.contains("s3cret"))
        #expect(printed.contains(#"url = "amqp://herald:(redacted)@mq.internal:5672/prod""#))
        var expected = configuration
        expected.bridge?.url = "amqp://herald:(redacted)@mq.internal:5672/prod"
        #expect(try HeraldConfiguration().applying(toml: printed) == expected)
        #expect(try HeraldConfiguration().applying(toml: "").bridge == nil)
    }

    @Test func invalidTOMLSaysWhere() {
        do {
            _ = try HeraldConfiguration().applying(toml: "[ipc]\nmax_frame = = 3")
            Issue.record("accepted")
        } catch {
            #expect(error.key == "")
            #expect(error.description.hasPrefix("configuration: not valid TOML at line 2"))
        }
    }

    /// TOMLKit cuts a string at a NUL (`"mods\u0000/x"` read as `"mods"`): such a text is refused, naming the
    /// key and its line (PROTOCOL.md §9); the same characters where they are text (after an escaped
    /// backslash, in a literal string, in a comment) are not a NUL.
    @Test(arguments: [
        (#"data_dir = "a\u0000b""#, "data_dir", 1),
        ("[modules]\n" + #"dir = "mods\U00000000/x""#, "modules.dir", 2),
        (
            "# a comment with \"quotes\"\n[ipc]\nsocket = '''it's'''\n[modules]\ndir = \"\"\"\nm\\u0000\"\"\"",
            "modules.dir", 6
        ),
        ("[[auth.tokens]]\nname = \"a\"\nsubscribe = [\n  \"x\",\n  \"y\\u0000\",\n]", "auth.tokens.subscribe", 5),
    ])
    func aStringHoldingNULIsRefusedNamingItsKey(text: String, key: String, line: Int) throws {
        do {
            _ = try HeraldConfiguration().applying(toml: text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.key == key)
            #expect(
                error.description
                    == "configuration: \(key): line \(line): the string holds \\u0000 (NUL), which no setting may hold")
        }
    }

    /// The error is one line whatever the file held: keys and values quoted from it keep their control
    /// characters as escapes.
    @Test func anErrorIsOneLineEvenWhenTheFileQuotesANewline() throws {
        for text in [#""a\nb" = 1"#, "[http]\nlisten = \"x\\ny:80\"", "[\"ipc\\r\"]\nx = 1"] {
            do {
                try HeraldConfiguration().applying(toml: text).validate()
                Issue.record("accepted: \(text)")
            } catch {
                #expect(!error.description.contains("\n") && !error.description.contains("\r"), "\(error)")
            }
        }
        do {
            _ = try HeraldConfiguration().applying(toml: #""a\nb" = 1"#)
        } catch {
            #expect(error.description == #"configuration: a\nb: unknown key"#)
        }
    }

    /// A raw NUL byte (TOML allows none) would end the text for TOMLKit's parser, dropping what follows: here
    /// the tokens, so that the broker would run with none.
    @Test func aRawNULByteIsRefusedWithItsLine() throws {
        let text = "data_dir = \"d\"\n# \u{0}\n[[auth.tokens]]\nname = \"a\"\ntoken = \"t\"\n"
        do {
            _ = try HeraldConfiguration().applying(toml: text)
            Issue.record("accepted")
        } catch {
            #expect(error.description == "configuration: line 2: a NUL byte (0x00), which TOML does not allow")
        }
    }

    /// A quoted table name is read as a string: TOMLKit would cut it at the NUL, and apply `modules.dir`.
    @Test func aTableNameHoldingNULIsRefused() throws {
        do {
            _ = try HeraldConfiguration().applying(toml: "[\"modules\\u0000x\"]\ndir = \"y\"")
            Issue.record("accepted")
        } catch {
            #expect(error.description == "configuration: line 1: a key holds \\u0000 (NUL), which no setting may hold")
        }
    }

    @Test func nulEscapesWhereTheyAreTextAreAccepted() throws {
        #expect(try HeraldConfiguration().applying(toml: #"data_dir = "a\\u0000b""#).dataDirectory == #"a\u0000b"#)
        #expect(try HeraldConfiguration().applying(toml: #"data_dir = 'a\u0000b'"#).dataDirectory == #"a\u0000b"#)
        #expect(try HeraldConfiguration().applying(toml: "data_dir = '''\na\\u0000b'''").dataDirectory == #"a\u0000b"#)
        #expect(
            try HeraldConfiguration().applying(toml: "# \"\\u0000\"\ndata_dir = \"d\" # \\U00000000").dataDirectory
                == "d")
    }

    @Test func exposingHTTPBeyondLoopbackNeedsTokens() throws {
        var configuration = HeraldConfiguration()
        configuration.http.listen = "0.0.0.0:7480"
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.tokens = [.init(name: "ui", secret: "s", publish: [], subscribe: [])]
        #expect(throws: Never.self) { try configuration.validate() }
        for loopback in ["127.0.0.1:0", "localhost:7480", "[::1]:7480", "127.1.2.3:80"] {
            var local = HeraldConfiguration()
            local.http.listen = loopback
            #expect(throws: Never.self) { try local.validate() }
        }
    }

    /// Every option is documented in docs/configuration.md (ARCHITECTURE.md: "Every option is documented").
    @Test func everyKeyIsDocumented() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../docs/configuration.md"
        )
        let text = try String(contentsOf: docs, encoding: .utf8)
        for key in HeraldConfiguration.keys {
            #expect(text.contains("`\(key.name)`"), "docs/configuration.md does not document \(key.name)")
        }
        for key in ["auth.tokens", "name", "token", "publish", "subscribe"] {
            #expect(text.contains("`\(key)`"))
        }
    }
}

extension HeraldConfigurationTests {
    /// The documentation's example is exactly what the defaults print.
    @Test func documentedExampleIsThePrintedDefaults() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../docs/configuration.md"
        )
        let text = try String(contentsOf: docs, encoding: .utf8)
        let example = try #require(text.components(separatedBy: "```toml\n").last?.components(separatedBy: "```").first)
        #expect(example == HeraldConfiguration().tomlDescription)
    }
}
