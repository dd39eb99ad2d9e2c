// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `block.new`: a block was added to the chain (node `NewBlock`, explorer `block.new`).
public struct BlockNew: CatalogEvent {
    public static let eventType = "block.new"

    public var hash: String
    public var blockNumber: Int
    public var timestamp: String?
    public var transactionCount: Int?

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
    public static let eventType = "block.disconnected"

    public var hash: Hash
    public var height: Int

    public init(hash: Hash, height: Int) {
        self.hash = hash
        self.height = height
    }
}

/// `chain.reorg`: the best chain changed tips (node `ChainReorg`).
public struct ChainReorg: CatalogEvent {
    public static let eventType = "chain.reorg"

    public var oldTip: Hash
    public var newTip: Hash

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
    public static let eventType = "transaction.pending"

    public var hash: String
    public var fromAddress: String?
    public var toAddress: String?
    public var feeRate: Double?

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
    public static let eventType = "transaction.confirmed"

    public var hash: String
    public var blockNumber: Int
    public var fromAddress: String
    public var toAddress: String
    public var status: TransactionStatus

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
    public static let eventType = "token.transfer"

    public var tokenAddress: String
    public var fromAddress: String
    public var toAddress: String
    public var amount: String  // decimal, arbitrary size
    public var transactionHash: String

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
    public static let eventType = "contract.verified"

    public var address: String
    public var verificationStatus: String
    public var verifiedAt: String

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
    public static let eventType = "chain.sync"

    public var network: String
    public var syncing: Bool
    public var progress: Double
    public var peers: Int
    public var blockHeight: Int

    public init(network: String, syncing: Bool, progress: Double, peers: Int, blockHeight: Int) {
        self.network = network
        self.syncing = syncing
        self.progress = progress
        self.peers = peers
        self.blockHeight = blockHeight
    }
}
