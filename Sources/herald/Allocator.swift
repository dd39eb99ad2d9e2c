#if canImport(Glibc)
    import Glibc
#endif

/// The `malloc` this process runs on, as the dynamic linker resolved it: jemalloc, which the executable
/// links (Package.swift, docs/benchmarks.md "Allocator"), or the C library's if the link order went wrong.
/// `herald serve` logs it at start: on glibc's malloc the broker spends about a fifth more CPU per event.
enum Allocator {
    /// `jemalloc 5.3.0-…` when the `malloc` every call reaches is jemalloc's, else `the C library's`.
    static var inUse: String {
        #if canImport(Glibc)
            guard let jemalloc = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_NOLOAD) else { return "the C library's" }
            defer { dlclose(jemalloc) }
            guard let own = dlsym(jemalloc, "malloc"), dlsym(nil, "malloc") == own,
                let mallctl = dlsym(jemalloc, "mallctl")
            else { return "the C library's" }
            typealias Control =
                @convention(c) (
                    UnsafePointer<CChar>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?,
                    UnsafeMutableRawPointer?, Int
                ) -> Int32
            var version: UnsafePointer<CChar>?
            var size = MemoryLayout<UnsafePointer<CChar>?>.size
            guard unsafeBitCast(mallctl, to: Control.self)("version", &version, &size, nil, 0) == 0, let version else {
                return "jemalloc"
            }
            return "jemalloc \(String(cString: version))"
        #else
            return "the system's"
        #endif
    }
}
