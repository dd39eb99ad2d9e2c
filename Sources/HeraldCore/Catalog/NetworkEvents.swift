// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `peer.connected`: a peer connected.
public struct PeerConnected: CatalogEvent {
    /// `peer.connected`.
    public static let eventType = "peer.connected"

    /// `peer_addr`.
    public var peerAddr: String
    /// `transport_type`.
    public var transportType: String
    /// `services`.
    public var services: Int
    /// `version`.
    public var version: Int

    /// Makes the payload from its fields.
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
    /// `peer.disconnected`.
    public static let eventType = "peer.disconnected"

    /// `peer_addr`.
    public var peerAddr: String
    /// `reason`.
    public var reason: String

    /// Makes the payload from its fields.
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
    /// `peer.banned`.
    public static let eventType = "peer.banned"

    /// `peer_addr`.
    public var peerAddr: String
    /// `reason`.
    public var reason: String
    /// `ban_duration_seconds`.
    public var banDurationSeconds: Int

    /// Makes the payload from its fields.
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
    /// `network.message_received`.
    public static let eventType = "network.message_received"

    /// `peer_addr`.
    public var peerAddr: String
    /// `message_type`.
    public var messageType: String
    /// `message_size`.
    public var messageSize: Int
    /// `protocol_version`.
    public var protocolVersion: Int

    /// Makes the payload from its fields.
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
    /// `network.broadcast_started`.
    public static let eventType = "network.broadcast_started"

    /// `message_type`.
    public var messageType: String
    /// `target_peers`.
    public var targetPeers: Int

    /// Makes the payload from its fields.
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
    /// `network.broadcast_completed`.
    public static let eventType = "network.broadcast_completed"

    /// `message_type`.
    public var messageType: String
    /// `successful`.
    public var successful: Int
    /// `failed`.
    public var failed: Int

    /// Makes the payload from its fields.
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
