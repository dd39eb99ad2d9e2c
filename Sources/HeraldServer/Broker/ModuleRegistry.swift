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
    }

    private struct State {
        var connections: [String: Int] = [:]
        /// Loaded modules, oldest load first.
        var loaded: [LoadedModule] = []
    }

    private let state = StateLock(State())

    /// A connection of `module` said hello.
    func connected(_ module: String) {
        state.withLock { $0.connections[module, default: 0] += 1 }
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

    /// A connection of `module` closed: returns the module if that was its last connection and it was
    /// loaded, which unloads it.
    func disconnected(_ module: String) -> LoadedModule? {
        state.withLock { state in
            let remaining = (state.connections[module] ?? 1) - 1
            guard remaining == 0 else {
                state.connections[module] = remaining
                return nil
            }
            state.connections[module] = nil
            guard let index = state.loaded.firstIndex(where: { $0.name == module }) else { return nil }
            return state.loaded.remove(at: index)
        }
    }

    /// The loaded modules, oldest load first.
    var loadedModules: [LoadedModule] {
        state.withLock { $0.loaded }
    }
}
