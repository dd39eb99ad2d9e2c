import Foundation
import HeraldCore

/// Which modules are connected and which are loaded, in load order (PROTOCOL.md §3).
///
/// A module is identified by its name; it may have several connections. It becomes loaded when one of its
/// connections completes its first `subscribe` or sends `ready`, and unloaded when its last connection
/// closes. Only the decisions live here; the connection sends the events.
final class ModuleRegistry: Sendable {
    struct LoadedModule: Equatable {
        let name: String
        let version: String
        /// When it was loaded.
        var loadedAt = Date()
        /// Its `module.loaded` as published (and stored): what a module loaded later is replayed.
        var announcement: EventEnvelope?

        /// The same module: its load time is not part of what it is.
        static func == (lhs: LoadedModule, rhs: LoadedModule) -> Bool {
            lhs.name == rhs.name && lhs.version == rhs.version
        }
    }

    /// A module as `GET /v1/modules` lists it: connected, and loaded or not.
    struct Listing: Equatable {
        let name: String
        let version: String
        let connections: Int
        /// When it was loaded; `nil` while it is only connected.
        let loadedAt: Date?
    }

    private struct State {
        var connections: [String: Int] = [:]
        /// The version the last connection of each connected module announced.
        var versions: [String: String] = [:]
        /// Loaded modules, oldest load first.
        var loaded: [LoadedModule] = []
        /// Connections that are not healthy, by module.
        var health: [String: [ObjectIdentifier: ModuleHealth]] = [:]
        /// How to close each open connection, by module (``closeConnections(of:)``).
        var closers: [String: [ObjectIdentifier: @Sendable () -> Void]] = [:]
    }

    private let state = StateLock(State())

    /// A connection of `module` said hello.
    func connected(_ module: String, version: String) {
        state.withLock { state in
            state.connections[module, default: 0] += 1
            state.versions[module] = version
        }
    }

    /// Loads `module` unless it is loaded already: returns the other loaded modules, oldest load first, or
    /// `nil` when it was already loaded (a later subscribe replays and publishes nothing).
    func load(_ module: String, version: String) -> [LoadedModule]? {
        state.withLock { state in
            guard !state.loaded.contains(where: { $0.name == module }) else { return nil }
            let others = state.loaded
            state.loaded.append(LoadedModule(name: module, version: version))
            return others
        }
    }

    /// Keeps the `module.loaded` published for `module`, for the replays to modules loaded after it.
    func announced(_ module: String, _ envelope: EventEnvelope) {
        state.withLock { state in
            guard let index = state.loaded.firstIndex(where: { $0.name == module }) else { return }
            state.loaded[index].announcement = envelope
        }
    }

    /// Keeps how to close a connection of `module` (said hello as it), until ``forgetCloser(of:module:)``.
    func keepCloser(of connection: ObjectIdentifier, module: String, _ close: @escaping @Sendable () -> Void) {
        state.withLock { $0.closers[module, default: [:]][connection] = close }
    }

    func forgetCloser(of connection: ObjectIdentifier, module: String) {
        state.withLock { state in
            state.closers[module]?[connection] = nil
            if state.closers[module]?.isEmpty == true { state.closers[module] = nil }
        }
    }

    /// Closes every open connection of `module` (the broker stopped it: whatever still uses its name goes
    /// with it).
    func closeConnections(of module: String) {
        let closers = state.withLock { Array(($0.closers[module] ?? [:]).values) }
        for close in closers { close() }
    }

    /// A connection of `module` closed: returns whether it was the module's last, and the module if it was
    /// also loaded, which unloads it.
    func disconnected(_ module: String) -> (last: Bool, unloaded: LoadedModule?) {
        state.withLock { state in
            let remaining = (state.connections[module] ?? 1) - 1
            guard remaining == 0 else {
                state.connections[module] = remaining
                return (false, nil)
            }
            state.connections[module] = nil
            state.versions[module] = nil
            state.health[module] = nil
            guard let index = state.loaded.firstIndex(where: { $0.name == module }) else { return (true, nil) }
            return (true, state.loaded.remove(at: index))
        }
    }

    /// Whether `module` is loaded.
    func isLoaded(_ module: String) -> Bool {
        state.withLock { state in state.loaded.contains { $0.name == module } }
    }

    /// Whether a connection of `module` is open.
    func isConnected(_ module: String) -> Bool {
        state.withLock { $0.connections[module] != nil }
    }

    /// A connection of `module` reports its own health from its heartbeats (`connection` tells the
    /// connections apart). Returns the module's change of health, the worst of its connections', when the
    /// module is loaded and its health changed: what `module.health_changed` says.
    func report(
        _ health: ModuleHealth, of connection: ObjectIdentifier, module: String
    ) -> (old: ModuleHealth, new: ModuleHealth)? {
        state.withLock { state in
            var connections = state.health[module, default: [:]]
            let old = Self.worst(connections.values)
            connections[connection] = health == .healthy ? nil : health
            state.health[module] = connections
            let new = Self.worst(connections.values)
            guard old != new, state.loaded.contains(where: { $0.name == module }) else { return nil }
            return (old, new)
        }
    }

    /// Leaves a closing connection's health out of its module's, without a change to report.
    func forget(_ connection: ObjectIdentifier, module: String) {
        _ = state.withLock { $0.health[module]?.removeValue(forKey: connection) }
    }

    /// The health of a connected module: the worst of its connections'.
    func health(of module: String) -> ModuleHealth? {
        state.withLock { state in
            state.connections[module] == nil ? nil : Self.worst(state.health[module, default: [:]].values)
        }
    }

    private static func worst(_ healths: some Sequence<ModuleHealth>) -> ModuleHealth {
        healths.contains(.unhealthy) ? .unhealthy : healths.contains(.degraded) ? .degraded : .healthy
    }

    /// Every connected module: loaded ones first, oldest load first, then the others by name.
    var listing: [Listing] {
        state.withLock { state in
            let loaded = state.loaded.map { module in
                Listing(
                    name: module.name, version: module.version, connections: state.connections[module.name] ?? 0,
                    loadedAt: module.loadedAt)
            }
            let others = state.connections.keys.filter { name in !state.loaded.contains { $0.name == name } }.sorted()
                .map { name in
                    Listing(
                        name: name, version: state.versions[name] ?? "", connections: state.connections[name] ?? 0,
                        loadedAt: nil)
                }
            return loaded + others
        }
    }

    /// The loaded modules, oldest load first.
    var loadedModules: [LoadedModule] {
        state.withLock { $0.loaded }
    }
}
