import Glibc
import NIOCore

/// Where an IPC connection comes from, as far as the ``ModuleSupervisor`` needs to know: whether it is a
/// connection of the process the broker started for a module, or another client that gave the module's name
/// in its `hello` (PROTOCOL.md §3 loads a module by name, whoever connects).
struct ConnectionOrigin: Sendable {
    /// The token the broker issued to a run it started (`HERALD_TOKEN`), when the client presented one.
    var issuedToken: String?
    /// The process at the other end of a Unix socket connection (`SO_PEERCRED`); `nil` over TCP.
    var peerProcess: Int32?

    /// Whether the connection is the run's that was issued `token` and whose process is `leader`. A client
    /// that presented an issued token is the run that token was issued to. One that did not is the run's when
    /// its process is in the run's process group (every module process leads its own group, and what it
    /// starts stays in it unless it leaves on purpose), as systemd tells a service's processes by their cgroup.
    func isRun(token: String?, leader: Int32?) -> Bool {
        if let issuedToken { return issuedToken == token }
        guard let peerProcess, let leader else { return false }
        return getpgid(peerProcess) == leader
    }

    /// The process at the other end of `channel`, a connection of the Unix socket listener; `nil` when the
    /// kernel does not say (a TCP connection). Called on the channel's event loop, where the read is
    /// immediate.
    static func peerProcess(of channel: any Channel) -> Int32? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        var process: Int32?
        provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            .assumeIsolated()
            .whenSuccess { (credentials: PeerCredentials) in process = credentials.pid > 0 ? credentials.pid : nil }
        return process
    }

    /// `struct ucred` of `<sys/socket.h>`, which Glibc's module map leaves out (it needs `_GNU_SOURCE`).
    private struct PeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }
}
