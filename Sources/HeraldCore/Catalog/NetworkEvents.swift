// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `peer.connected`: a peer connected.
public struct PeerConnected: CatalogEvent {
    public static let eventType = "peer.connected"

    public var peerAddr: String
    public var transportType: String
    public var services: Int
    public var version: Int

    public init(peerAddr: String, transportType: String, services: Int, version: Int) {
        self.peerAddr = peerAddr
        self.transportType = transportType
        self.services = services
        self.version = version
    }

    enum CodingKeys: String, CodingKey {
        case peerAddr = "peer_addr"
        case transportType = "transport_type"
        case services
        case version
    }
}

/// `peer.disconnected`: a peer disconnected.
public struct PeerDisconnected: CatalogEvent {
    public static let eventType = "peer.disconnected"

    public var peerAddr: String
    public var reason: String

    public init(peerAddr: String, reason: String) {
        self.peerAddr = peerAddr
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case peerAddr = "peer_addr"
        case reason
    }
}

/// `peer.banned`: a peer was banned.
public struct PeerBanned: CatalogEvent {
    public static let eventType = "peer.banned"

    public var peerAddr: String
    public var reason: String
    public var banDurationSeconds: Int

    public init(peerAddr: String, reason: String, banDurationSeconds: Int) {
        self.peerAddr = peerAddr
        self.reason = reason
        self.banDurationSeconds = banDurationSeconds
    }

    enum CodingKeys: String, CodingKey {
        case peerAddr = "peer_addr"
        case reason
        case banDurationSeconds = "ban_duration_seconds"
    }
}

/// `network.message_received`: a network message arrived.
public struct NetworkMessageReceived: CatalogEvent {
    public static let eventType = "network.message_received"

    public var peerAddr: String
    public var messageType: String
    public var messageSize: Int
    public var protocolVersion: Int

    public init(peerAddr: String, messageType: String, messageSize: Int, protocolVersion: Int) {
        self.peerAddr = peerAddr
        self.messageType = messageType
        self.messageSize = messageSize
        self.protocolVersion = protocolVersion
    }

    enum CodingKeys: String, CodingKey {
        case peerAddr = "peer_addr"
        case messageType = "message_type"
        case messageSize = "message_size"
        case protocolVersion = "protocol_version"
    }
}

/// `network.broadcast_started`: a broadcast to peers began.
public struct NetworkBroadcastStarted: CatalogEvent {
    public static let eventType = "network.broadcast_started"

    public var messageType: String
    public var targetPeers: Int

    public init(messageType: String, targetPeers: Int) {
        self.messageType = messageType
        self.targetPeers = targetPeers
    }

    enum CodingKeys: String, CodingKey {
        case messageType = "message_type"
        case targetPeers = "target_peers"
    }
}

/// `network.broadcast_completed`: a broadcast to peers finished.
public struct NetworkBroadcastCompleted: CatalogEvent {
    public static let eventType = "network.broadcast_completed"

    public var messageType: String
    public var successful: Int
    public var failed: Int

    public init(messageType: String, successful: Int, failed: Int) {
        self.messageType = messageType
        self.successful = successful
        self.failed = failed
    }

    enum CodingKeys: String, CodingKey {
        case messageType = "message_type"
        case successful
        case failed
    }
}
