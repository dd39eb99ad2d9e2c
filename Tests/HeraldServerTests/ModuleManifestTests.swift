import Foundation
import Testing

@testable import HeraldServer

/// `module.toml` checks and the modules directory's start order (ARCHITECTURE.md "Module manifest").
@Suite struct ModuleManifestTests {
    @Test func aFullManifestIsRead() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add(
            "fee-oracle", arguments: ["--verbose"],
            extra: """
                depends_on = ["indexer"]
                [permissions]
                subscribe = ["block.new.#", "module.#"]
                publish = ["fee.estimate.#"]
                [restart]
                policy = "always"
                max_restarts = 3
                backoff_ms = 500
                [env]
                LOG_LEVEL = "info"
                [limits]
                memory_mb = 512
                open_files = 256
                """)
        let manifest = try ModuleManifest.load(folder: modules.directory + "/fee-oracle")
        #expect(manifest.name == "fee-oracle")
        #expect(manifest.version == "1.0.0")
        #expect(manifest.entryPoint.hasSuffix("/fee-oracle/module.py"))
        #expect(manifest.arguments == ["--verbose"])
        #expect(manifest.dependencies == ["indexer"])
        #expect(manifest.subscribe.map(\.text) == ["block.new.#", "module.#"])
        #expect(manifest.publish.map(\.text) == ["fee.estimate.#"])
        #expect(manifest.restart == .init(policy: .always, maxRestarts: 3, backoffMs: 500))
        #expect(manifest.environment == ["LOG_LEVEL": "info"])
        #expect(manifest.limits == .init(memoryMB: 512, openFiles: 256))
        // Backoff doubles up to 30 s.
        #expect(manifest.restart.backoff(after: 0) == .milliseconds(500))
        #expect(manifest.restart.backoff(after: 2) == .milliseconds(2000))
        #expect(manifest.restart.backoff(after: 10) == .milliseconds(30_000))
    }

    @Test(arguments: [
        ("colour = \"red\"", "colour: unknown key"),
        ("[restart]\npolicy = \"sometimes\"", #"restart.policy: must be "never", "on-failure" or "always""#),
        ("[restart]\nretries = 1", "restart.retries: unknown key"),
        ("[limits]\nmemory_mb = 0", "limits.memory_mb: must be an integer from 1 to 1048576"),
        ("[env]\nHERALD_TOKEN = \"x\"", "env.HERALD_TOKEN: HERALD_ variables are set by the broker"),
        ("[env]\nLEVEL = 3", "env.LEVEL: must be a string"),
        ("[permissions]\npublish = [\"a..b\"]", "permissions.publish[0]: 'a..b' is not a topic pattern"),
        ("depends_on = [\"bad\"]", "depends_on[0]: a module cannot depend on itself"),
        ("depends_on = [1]", "depends_on[0]: must be a string"),
    ])
    func aBadFieldIsNamed(_ extra: String, _ message: String) throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("bad", extra: extra)
        #expect(throws: ManifestError.self) { try ModuleManifest.load(folder: modules.directory + "/bad") }
        do {
            _ = try ModuleManifest.load(folder: modules.directory + "/bad")
        } catch {
            #expect(error.description.contains("/bad/module.toml: " + message))
        }
    }

    @Test func aManifestThatIsADirectoryIsRefusedSayingSo() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try FileManager.default.createDirectory(
            atPath: modules.directory + "/odd/module.toml", withIntermediateDirectories: true)
        do {
            _ = try ModuleManifest.load(folder: modules.directory + "/odd")
            Issue.record("a directory was read as a manifest")
        } catch {
            #expect(error.description.hasSuffix("/odd/module.toml: cannot be read: is a directory, not a file"))
        }
    }

    @Test(arguments: [
        ("../escape.sh", "entry_point: '../escape.sh' must not contain '..'"),
        ("/bin/sh", "entry_point: '/bin/sh' must be relative to the module's folder"),
        ("missing.sh", "entry_point: 'missing.sh' does not exist"),
    ])
    func anEntryPointOutsideTheFolderOrMissingIsRefused(_ entryPoint: String, _ message: String) throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("m", entryPoint: "module.py")
        try modules.writeManifest("m", "name = \"m\"\nversion = \"1.0.0\"\nentry_point = \"\(entryPoint)\"\n")
        let directory = ModuleDirectory(path: modules.directory)
        #expect(directory.manifests.isEmpty)
        #expect(directory.errors.map(\.description) == ["\(modules.directory)/m/module.toml: \(message)"])
    }

    @Test func aDirectoryThatIsMissingOrAFileOrHoldsOtherFoldersSaysSo() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("real")
        try FileManager.default.createDirectory(atPath: modules.directory + "/notes", withIntermediateDirectories: true)
        let directory = ModuleDirectory(path: modules.directory)
        #expect(directory.problem == nil)
        #expect(directory.manifests.map(\.name) == ["real"])
        #expect(directory.ignoredFolders == ["notes"])
        #expect(ModuleDirectory(path: modules.directory + "/absent").problem == .missing)
        #expect(ModuleDirectory(path: modules.directory + "/real/module.toml").problem == .notADirectory)
    }

    @Test func aFileThatIsNotExecutableIsRefused() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("m")
        chmod(modules.directory + "/m/module.py", 0o644)
        #expect(
            ModuleDirectory(path: modules.directory).errors.first?.message == "'module.py' is not executable (chmod +x)"
        )
    }

    @Test(arguments: [
        (
            "name = \"Bad Name\"\nversion = \"1.0.0\"\nentry_point = \"module.py\"",
            "name: 'Bad Name' must be 1 to 64 of a-z, 0-9, '_' and '-'"
        ),
        (
            "name = \"herald\"\nversion = \"1.0.0\"\nentry_point = \"module.py\"",
            "name: 'herald' is the broker's own name"
        ),
        (
            "name = \"other\"\nversion = \"1.0.0\"\nentry_point = \"module.py\"",
            "name: 'other' must be the name of the module's folder, 'm'"
        ),
        (
            "name = \"m\"\nversion = \"1.0\"\nentry_point = \"module.py\"",
            "version: '1.0' is not a semantic version such as 1.0.0"
        ),
        (
            "name = \"m\"\nversion = \"01.0.0\"\nentry_point = \"module.py\"",
            "version: '01.0.0' is not a semantic version such as 1.0.0"
        ),
        ("name = \"m\"\nentry_point = \"module.py\"", "version: required"),
        ("name = \"m\"\nversion = ", "not valid TOML"),
        ("name = \"m\"\nversion = \"1.0.0\"\nentry_point = \"module.py\\u0000x\"", "line 3: entry_point holds \\u0000"),
    ])
    func badNamesAndVersionsAreRefused(_ text: String, _ message: String) throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("m")
        try modules.writeManifest("m", text + "\n")
        let errors = ModuleDirectory(path: modules.directory).errors.map(\.description)
        #expect(errors.count == 1)
        #expect(errors.first?.contains("/m/module.toml: " + message) == true)
    }

    @Test func semanticVersionsWithPrereleaseAndBuildAreAccepted() {
        for version in ["0.0.1", "1.2.3-beta.1", "10.20.30+build.5", "1.0.0-rc.1+sha.abc"] {
            #expect(ModuleManifest.isValidVersion(version), "\(version)")
        }
        for version in ["1", "1.2", "1.2.3.4", "1.2.x", "v1.2.3", "1.2.3-", "1.2.3-é"] {
            #expect(!ModuleManifest.isValidVersion(version), "\(version)")
        }
    }

    @Test func dependenciesOrderTheStartAndBadOnesAreRefusedWithTheirDependents() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("api", extra: #"depends_on = ["store", "cache"]"#)
        try modules.add("store")
        try modules.add("cache", extra: #"depends_on = ["store"]"#)
        try modules.add("orphan", extra: #"depends_on = ["ghost"]"#)
        try modules.add("ping", extra: #"depends_on = ["pong"]"#)
        try modules.add("pong", extra: #"depends_on = ["ping"]"#)
        try modules.add("broken", version: "x")
        try modules.add("needs-broken", extra: #"depends_on = ["broken"]"#)
        try FileManager.default.createDirectory(
            atPath: modules.directory + "/not-a-module", withIntermediateDirectories: true)
        let directory = ModuleDirectory(path: modules.directory)
        #expect(directory.manifests.map(\.name) == ["store", "cache", "api"])
        let errors = directory.errors.map { $0.description.replacingOccurrences(of: modules.directory + "/", with: "") }
        #expect(
            errors.sorted() == [
                "broken/module.toml: version: 'x' is not a semantic version such as 1.0.0",
                "needs-broken/module.toml: depends_on[0]: 'broken' was refused, so this module cannot start",
                "orphan/module.toml: depends_on[0]: 'ghost' is not a module in \(modules.directory)",
                "ping/module.toml: depends_on: dependency cycle: ping -> pong -> ping",
                "pong/module.toml: depends_on: dependency cycle: pong -> ping -> pong",
            ])
    }

    @Test func aMissingModulesDirectoryHoldsNoModules() {
        let directory = ModuleDirectory(path: "/nonexistent/herald-modules")
        #expect(directory.manifests.isEmpty)
        #expect(directory.errors.isEmpty)
    }
}
