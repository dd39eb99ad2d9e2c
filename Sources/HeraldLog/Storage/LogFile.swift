#if canImport(Glibc)
    import Glibc
#endif

/// An open file of the log, with the few POSIX calls the log needs; every failure becomes a ``LogError``
/// naming the file. Closed when the last reference goes, so a reader holding a segment can finish reading
/// it while retention deletes it.
final class LogFile: @unchecked Sendable {
    // Unchecked `Sendable`: the descriptor is immutable; positioned reads and writes (`pread`, `pwrite`) are
    // safe from any thread, and the log serialises appends itself.
    let path: String
    private let descriptor: Int32

    /// Opens `path` for reading and writing, creating it when `create` is set.
    init(path: String, create: Bool) throws(LogError) {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw LogError.io(path, "open", errno) }
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// The file's size in bytes.
    func size() throws(LogError) -> Int {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw LogError.io(path, "fstat", errno) }
        return Int(status.st_size)
    }

    /// Writes all of `bytes[range]` at `offset`.
    func write(_ bytes: [UInt8], _ range: Range<Int>? = nil, at offset: Int) throws(LogError) {
        let range = range ?? bytes.indices
        let failure = bytes.withUnsafeBytes { buffer -> Int32 in
            var done = 0
            while done < range.count {
                let written = pwrite(
                    descriptor, buffer.baseAddress! + range.lowerBound + done, range.count - done, off_t(offset + done))
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += written
            }
            return 0
        }
        if failure != 0 { throw LogError.io(path, "write", failure) }
    }

    /// Reads up to `count` bytes at `offset` into `buffer` (appending); fewer at the end of the file.
    func read(into buffer: inout [UInt8], count: Int, at offset: Int) throws(LogError) {
        let start = buffer.count
        // One zero-filled array, copied whole: `repeatElement` is appended element by element unoptimised.
        buffer.append(contentsOf: [UInt8](repeating: 0, count: count))
        var done = 0
        var failure: LogError?
        buffer.withUnsafeMutableBytes { bytes in
            do throws(LogError) {
                done = try read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[start...]), at: offset)
            } catch {
                failure = error
            }
        }
        buffer.removeLast(count - done)
        if let failure { throw failure }
    }

    /// Reads bytes at `offset` into `buffer` until it is full or the file ends; returns how many it read.
    /// What a reader of many chunks uses, with one buffer of its own: nothing is zeroed or copied first.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(LogError) -> Int {
        var done = 0
        while done < buffer.count {
            let read = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if read < 0 {
                if errno == EINTR { continue }
                throw LogError.io(path, "read", errno)
            }
            if read == 0 { break }
            done += read
        }
        return done
    }

    /// Takes an exclusive advisory lock on the file (`flock`), without waiting; `false` when another open
    /// file holds it.
    func tryLock() throws(LogError) -> Bool {
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return true }
        if errno == EWOULDBLOCK { return false }
        throw LogError.io(path, "flock", errno)
    }

    /// Releases the lock of ``tryLock()``.
    func unlock() {
        flock(descriptor, LOCK_UN)
    }

    /// Makes everything written so far durable (`fdatasync`: the data and the size, not the times).
    func sync() throws(LogError) {
        guard fdatasync(descriptor) == 0 else { throw LogError.io(path, "fsync", errno) }
    }

    /// Cuts the file to `size` bytes.
    func truncate(to size: Int) throws(LogError) {
        guard ftruncate(descriptor, off_t(size)) == 0 else { throw LogError.io(path, "truncate", errno) }
    }

    /// Makes the entries of `directory` durable (a created, renamed or deleted file).
    static func syncDirectory(_ directory: String) throws(LogError) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw LogError.io(directory, "open", errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw LogError.io(directory, "fsync", errno) }
    }

    /// Creates `path` and its missing parents.
    static func makeDirectory(_ path: String) throws(LogError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw LogError.io(prefix, "mkdir", errno) }
            prefix += "/"
        }
    }

    /// The names in `directory`, without `.` and `..`.
    static func names(in directory: String) throws(LogError) -> [String] {
        guard let handle = opendir(directory) else { throw LogError.io(directory, "opendir", errno) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Deletes the file at `path`; a missing file is not an error.
    static func remove(_ path: String) throws(LogError) {
        if unlink(path) != 0 && errno != ENOENT { throw LogError.io(path, "unlink", errno) }
    }

    /// Renames `path` to `newPath` (in the same file system: one step, whole or not at all).
    static func rename(_ path: String, to newPath: String) throws(LogError) {
        if Glibc.rename(path, newPath) != 0 { throw LogError.io(path, "rename", errno) }
    }

    /// Whether something exists at `path`.
    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}
