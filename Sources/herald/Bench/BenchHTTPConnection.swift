import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking HTTP/1.1 connection for `herald bench http`'s worker threads: requests are written whole and
/// the response read by its `Content-Length`, on one TCP connection kept alive across requests (or a new
/// one per request, to measure that too). Only what the benchmark's `POST`s need.
/// Unchecked `Sendable`: each is used by one worker thread.
final class BenchHTTPConnection: @unchecked Sendable {
    private let host: String
    private let port: UInt16
    private let keepAlive: Bool
    private var descriptor: Int32 = -1
    private var buffer: [UInt8] = []

    init(host: String, port: UInt16, keepAlive: Bool) {
        self.host = host
        self.port = port
        self.keepAlive = keepAlive
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Sends `POST path` with a JSON `body`; returns the status and the response body.
    func post(_ path: String, body: [UInt8]) throws -> (status: Int, body: String) {
        if descriptor < 0 { descriptor = try connectTCP(host: host, port: port) }
        let head =
            "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        try writeAll(descriptor, Array(head.utf8) + body)
        let response = try readResponse()
        if !keepAlive || response.closes {
            close(descriptor)
            descriptor = -1
            buffer.removeAll()
        }
        return (response.status, response.body)
    }

    private func readResponse() throws -> (status: Int, body: String, closes: Bool) {
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            headEnd = end(of: separator, in: buffer[...])
            if headEnd == nil { try readMore() }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self).lowercased()
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.hasPrefix("http/1.1 "),
            let status = Int(statusLine.dropFirst(9).prefix(3))
        else { throw BenchError("not an HTTP response: \(head.prefix(80))") }
        var length = 0
        var closes = false
        for line in lines.dropFirst() {
            if line.hasPrefix("content-length:") {
                length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            if line.hasPrefix("connection:") && line.contains("close") { closes = true }
            if line.hasPrefix("transfer-encoding:") {
                throw BenchError("chunked responses are not read by the benchmark")
            }
        }
        while buffer.count < headEnd! + length { try readMore() }
        let body = String(decoding: buffer[headEnd!..<(headEnd! + length)], as: UTF8.self)
        buffer.removeFirst(headEnd! + length)
        return (status, body, closes)
    }

    private func readMore() throws {
        var chunk = [UInt8](repeating: 0, count: 16384)
        let count = read(descriptor, &chunk, chunk.count)
        if count < 0 && errno == EINTR { return }
        guard count > 0 else { throw BenchError("the broker closed the connection") }
        buffer.append(contentsOf: chunk[..<count])
    }
}
