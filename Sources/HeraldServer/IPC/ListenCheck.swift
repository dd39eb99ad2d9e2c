import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Checks, before the broker starts anything, that it can listen where its configuration says: a port
/// another program holds (or a socket path longer than a Unix socket may have, which the configuration's
/// validation refuses) is then a one-line error and
/// a non-zero exit before the ready line — not a start that opens the socket, stores `node.shutdown` and
/// stops again (PROTOCOL.md §8: a bad configuration exits before the ready line).
public enum ListenCheck {
    /// Why `listen` (`host:port`, the value of `key`) cannot be listened on now, or `nil` when it can: a
    /// socket is bound there (with `SO_REUSEADDR`, as the listener binds) and closed. Port 0 always can.
    public static func problem(listening listen: String, key: String) -> String? {
        guard let address = HostPort(listen) else { return "\(key): must be host:port, not '\(listen)'" }
        guard address.port != 0 else { return nil }
        let resolved: SocketAddress
        do {
            resolved = try SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
        } catch {
            return "\(key): cannot listen on \(listen): \(error)"
        }
        let descriptor = socket(Int32(resolved.protocol.rawValue), Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = resolved.withSockAddr { pointer, size in bind(descriptor, pointer, socklen_t(size)) }
        guard bound != 0 else { return nil }
        return "\(key): cannot listen on \(listen): \(String(cString: strerror(errno)))"
    }

    /// Why the broker cannot make its socket at `path` now, or `nil`: its directory must exist (the data
    /// directory is made by the broker; another one is not), and a file there must be a socket (a stale one
    /// is replaced; anything else is not the broker's to remove).
    public static func problem(creatingSocketAt path: String) -> String? {
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        var status = stat()
        if !directory.isEmpty, stat(directory, &status) != 0 || status.st_mode & S_IFMT != S_IFDIR {
            return "ipc.socket: \(directory) is not a directory, so \(path) cannot be made"
        }
        if lstat(path, &status) == 0, status.st_mode & S_IFMT != S_IFSOCK {
            return "ipc.socket: \(path) exists and is not a socket; the broker will not replace it"
        }
        return nil
    }

    /// Why `path` (the socket `ipc.socket` names) cannot be a Unix socket's path, or `nil`.
    static func problem(socketPath path: String) -> String? {
        let limit = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
        guard path.utf8.count > limit else { return nil }
        return "\(path) is \(path.utf8.count) bytes; a Unix socket's path may have at most \(limit)"
    }
}
