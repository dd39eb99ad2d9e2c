#if canImport(Glibc)
    import Glibc
#endif

/// Why the log could not do what it was asked.
public enum LogError: Error, Equatable, CustomStringConvertible {
    /// A system call on a file of the log failed.
    case io(String, String, Int32)
    /// The log on disk does not fit the configuration or is not a Herald log.
    case incompatible(String)
    /// The log is closed.
    case closed

    public var description: String {
        switch self {
        case .io(let path, let call, let code):
            "\(path): \(call) failed: \(String(cString: strerror(code)))"
        case .incompatible(let message): message
        case .closed: "the log is closed"
        }
    }
}
