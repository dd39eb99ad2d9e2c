import Foundation
import HeraldCore
import Testing

@testable import HeraldServer

/// A started module's record, without processes: the order of its lifecycle events (EVENTS.md).
@Suite struct ModuleRecordTests {
    @Test func anUnloadAfterARecordedCrashWaitsUntilTheCrashIsPublished() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("victim")
        var record = ModuleRecord(manifest: try ModuleManifest.load(folder: modules.directory + "/victim"))
        record.begin(token: "t-1")
        let loaded = record.loaded()
        #expect(loaded)
        // The exit is recorded; the supervisor has not published `module.crashed` yet when the connection closes.
        let outcome = record.exited(.signaled(SIGKILL), shuttingDown: false, now: .now)
        #expect(outcome.crashed)
        let (handled, now, grace) = record.disconnected(
            ModuleRegistry.LoadedModule(name: "victim", version: "1.0.0"), saidBye: false)
        #expect(handled)
        #expect(now == nil)
        #expect(grace == nil)
        // Once `module.crashed` is out, the `module.unloaded` follows, once.
        let announced = record.crashAnnounced()
        let unloaded = try #require(announced)
        #expect([unloaded.moduleName, unloaded.version] == ["victim", "1.0.0"])
        #expect(unloaded.reason == .crashed)
        let again = record.crashAnnounced()
        #expect(again == nil)
    }
}
