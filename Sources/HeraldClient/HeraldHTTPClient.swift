import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 client for the broker's API (PROTOCOL.md §7): one connection per request, the token
/// sent as `Authorization: Bearer`. The CLI's `groups`, `dlq`, `replay` and `modules` use it.
public struct HeraldHTTPClient: Sendable {
    /// `host:port` of the broker's HTTP listener.
    public let address: String
    /// The bearer token, when the broker requires one.
    public let token: String?

    public init(address: String, token: String? = nil) {
        self.address = address
        self.token = token
    }

    /// A response: its status, headers and whole body.
    public struct Response: Sendable {
        public let status: Int
        public let headers: [(name: String, value: String)]
        public let body: [UInt8]

        /// The body as text.
        public var text: String { String(decoding: body, as: UTF8.self) }

        /// The body parsed as a JSON object, or `nil`.
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        }

        /// The first header named `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// Why a request failed before a response arrived.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Sends `method path` with `body` (JSON) and `headers`, and returns the response.
    public func request(
        _ method: String, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []
    ) async throws -> Response {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw Failure(description: "http: '\(address)' is not host:port")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel)
                    }
                }
        } catch let error as NIOConnectionError {
            // Said as the system said it ("connection refused"), not as NIO's structure prints.
            let first = error.connectionErrors.first?.error
            throw Failure(
                description: (first as? IOError).map { String(cString: strerror($0.errnoCode)) }
                    ?? first.map { "\($0)" } ?? "no address found for \(host)")
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: address)
        head.headers.add(name: "Connection", value: "close")
        if let token { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(body.count))
        } else if method == "POST" || method == "PUT" {
            head.headers.add(name: "Content-Length", value: "0")
        }
        for (name, value) in headers { head.headers.replaceOrAdd(name: name, value: value) }
        return try await channel.executeThenClose { inbound, outbound in
            var parts: [HTTPClientRequestPart] = [.head(head)]
            if let body { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            parts.append(.end(nil))
            do {
                try await outbound.write(contentsOf: parts)
            } catch {
                // The broker may answer and close before reading the whole request (a refused upgrade):
                // its response is still read below.
            }
            var status = 0
            var headers: [(name: String, value: String)] = []
            var received: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = Int(response.status.code)
                    headers = response.headers.map { ($0.name, $0.value) }
                case .body(let buffer):
                    received += buffer.readableBytesView
                case .end:
                    return Response(status: status, headers: headers, body: received)
                }
            }
            throw Failure(description: "http: the broker closed the connection before the response ended")
        }
    }

    /// `GET path`.
    public func get(_ path: String) async throws -> Response {
        try await request("GET", path)
    }

    /// `POST path` with a JSON body.
    public func post(_ path: String, json: String? = nil) async throws -> Response {
        try await request("POST", path, body: json.map { Array($0.utf8) })
    }

    /// `DELETE path`.
    public func delete(_ path: String) async throws -> Response {
        try await request("DELETE", path)
    }
}
