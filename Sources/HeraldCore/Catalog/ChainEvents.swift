// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `block.new`: a block was added to the chain (node `NewBlock`, explorer `block.new`).
public struct BlockNew: CatalogEvent {
    /// `block.new`.
    public static let eventType = "block.new"

    /// `hash`.
    public var hash: String
    /// `block_number`.
    public var blockNumber: Int
    /// `timestamp` (optional).
    public var timestamp: String?
    /// `transaction_count` (optional).
    public var transactionCount: Int?

    /// Makes the payload from its fields.
    public init(hash: String, blockNumber: Int, timestamp: String? = nil, transactionCount: Int? = nil) {
        self.hash = hash
        self.blockNumber = blockNumber
        self.timestamp = timestamp
        self.transactionCount = transactionCount
    }

    enum CodingKeys: String, CodingKey {
        case hash
        case blockNumber = "block_number"
        case timestamp
        case transactionCount = "transaction_count"
    }
}

/// `block.disconnected`: a block left the best chain (node `BlockDisconnected`).
public struct BlockDisconnected: CatalogEvent {
    /// `block.disconnected`.
    public static let eventType = "block.disconnected"

    /// `hash`.
    public var hash: Hash
    /// `height`.
    public var height: Int

    /// Makes the payload from its fields.
    public init(hash: Hash, height: Int) {
        self.hash = hash
        self.height = height
    }
}

/// `chain.reorg`: the best chain changed tips (node `ChainReorg`).
public struct ChainReorg: CatalogEvent {
    /// `chain.reorg`.
    public static let eventType = "chain.reorg"

    /// `old_tip`.
    public var oldTip: Hash
    /// `new_tip`.
    public var newTip: Hash

    /// Makes the payload from its fields.
    public init(oldTip: Hash, newTip: Hash) {
        self.oldTip = oldTip
        self.newTip = newTip
    }

    enum CodingKeys: String, CodingKey {
        case oldTip = "old_tip"
        case newTip = "new_tip"
    }
}

/// `transaction.pending`: a transaction entered the mempool (node `NewTransaction`, explorer `transaction.pending`).
public struct TransactionPending: CatalogEvent {
    /// `transaction.pending`.
    public static let eventType = "transaction.pending"

    /// `hash`.
    public var hash: String
    /// `from_address` (optional).
    public var fromAddress: String?
    /// `to_address` (optional).
    public var toAddress: String?
    /// `fee_rate` (optional).
    public var feeRate: Double?

    /// Makes the payload from its fields.
    public init(hash: String, fromAddress: String? = nil, toAddress: String? = nil, feeRate: Double? = nil) {
        self.hash = hash
        self.fromAddress = fromAddress
        self.toAddress = toAddress
        self.feeRate = feeRate
    }

    enum CodingKeys: String, CodingKey {
        case hash
        case fromAddress = "from_address"
        case toAddress = "to_address"
        case feeRate = "fee_rate"
    }
}

/// `transaction.confirmed`: a transaction was included in a block (explorer).
public struct TransactionConfirmed: CatalogEvent {
    /// `transaction.confirmed`.
    public static let eventType = "transaction.confirmed"

    /// `hash`.
    public var hash: String
    /// `block_number`.
    public var blockNumber: Int
    /// `from_address`.
    public var fromAddress: String
    /// `to_address`.
    public var toAddress: String
    /// `status`.
    public var status: TransactionStatus

    /// Makes the payload from its fields.
    public init(hash: String, blockNumber: Int, fromAddress: String, toAddress: String, status: TransactionStatus) {
        self.hash = hash
        self.blockNumber = blockNumber
        self.fromAddress = fromAddress
        self.toAddress = toAddress
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case hash
        case blockNumber = "block_number"
        case fromAddress = "from_address"
        case toAddress = "to_address"
        case status
    }
}

/// `token.transfer`: a token moved between addresses (explorer).
public struct TokenTransfer: CatalogEvent {
    /// `token.transfer`.
    public static let eventType = "token.transfer"

    /// `token_address`.
    public var tokenAddress: String
    /// `from_address`.
    public var fromAddress: String
    /// `to_address`.
    public var toAddress: String
    /// `amount`: decimal, arbitrary size.
    public var amount: String
    /// `transaction_hash`.
    public var transactionHash: String

    /// Makes the payload from its fields.
    public init(tokenAddress: String, fromAddress: String, toAddress: String, amount: String, transactionHash: String) {
        self.tokenAddress = tokenAddress
        self.fromAddress = fromAddress
        self.toAddress = toAddress
        self.amount = amount
        self.transactionHash = transactionHash
    }

    enum CodingKeys: String, CodingKey {
        case tokenAddress = "token_address"
        case fromAddress = "from_address"
        case toAddress = "to_address"
        case amount
        case transactionHash = "transaction_hash"
    }
}

/// `contract.verified`: a contract's source was verified (explorer).
public struct ContractVerified: CatalogEvent {
    /// `contract.verified`.
    public static let eventType = "contract.verified"

    /// `address`.
    public var address: String
    /// `verification_status`.
    public var verificationStatus: String
    /// `verified_at`.
    public var verifiedAt: String

    /// Makes the payload from its fields.
    public init(address: String, verificationStatus: String, verifiedAt: String) {
        self.address = address
        self.verificationStatus = verificationStatus
        self.verifiedAt = verifiedAt
    }

    enum CodingKeys: String, CodingKey {
        case address
        case verificationStatus = "verification_status"
        case verifiedAt = "verified_at"
    }
}

/// `chain.sync`: sync progress of a chain (platform `ChainEvent`).
public struct ChainSync: CatalogEvent {
    /// `chain.sync`.
    public static let eventType = "chain.sync"

    /// `network`.
    public var network: String
    /// `syncing`.
    public var syncing: Bool
    /// `progress`.
    public var progress: Double
    /// `peers`.
    public var peers: Int
    /// `blockHeight`.
    public var blockHeight: Int

    /// Makes the payload from its fields.
    public init(network: String, syncing: Bool, progress: Double, peers: Int, blockHeight: Int) {
        self.network = network
        self.syncing = syncing
        self.progress = progress
        self.peers = peers
        self.blockHeight = blockHeight
    }
}
