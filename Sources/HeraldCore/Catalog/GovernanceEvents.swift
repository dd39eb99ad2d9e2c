// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `governance.proposal_created`: a governance proposal was opened.
public struct GovernanceProposalCreated: CatalogEvent {
    /// `governance.proposal_created`.
    public static let eventType = "governance.proposal_created"

    /// `proposal_id`.
    public var proposalId: String
    /// `repository`.
    public var repository: String
    /// `pr_number`.
    public var prNumber: Int
    /// `tier`.
    public var tier: String

    /// Makes the payload from its fields.
    public init(proposalId: String, repository: String, prNumber: Int, tier: String) {
        self.proposalId = proposalId
        self.repository = repository
        self.prNumber = prNumber
        self.tier = tier
    }

    enum CodingKeys: String, CodingKey {
        case proposalId = "proposal_id"
        case repository
        case prNumber = "pr_number"
        case tier
    }
}

/// `governance.proposal_voted`: a vote was cast on a proposal.
public struct GovernanceProposalVoted: CatalogEvent {
    /// `governance.proposal_voted`.
    public static let eventType = "governance.proposal_voted"

    /// `proposal_id`.
    public var proposalId: String
    /// `voter`.
    public var voter: String
    /// `vote`.
    public var vote: String

    /// Makes the payload from its fields.
    public init(proposalId: String, voter: String, vote: String) {
        self.proposalId = proposalId
        self.voter = voter
        self.vote = vote
    }

    enum CodingKeys: String, CodingKey {
        case proposalId = "proposal_id"
        case voter
        case vote
    }
}

/// `governance.proposal_merged`: a proposal was merged.
public struct GovernanceProposalMerged: CatalogEvent {
    /// `governance.proposal_merged`.
    public static let eventType = "governance.proposal_merged"

    /// `proposal_id`.
    public var proposalId: String
    /// `repository`.
    public var repository: String
    /// `pr_number`.
    public var prNumber: Int

    /// Makes the payload from its fields.
    public init(proposalId: String, repository: String, prNumber: Int) {
        self.proposalId = proposalId
        self.repository = repository
        self.prNumber = prNumber
    }

    enum CodingKeys: String, CodingKey {
        case proposalId = "proposal_id"
        case repository
        case prNumber = "pr_number"
    }
}

/// `governance.fork_detected`: a ruleset fork was detected.
public struct GovernanceForkDetected: CatalogEvent {
    /// `governance.fork_detected`.
    public static let eventType = "governance.fork_detected"

    /// `fork_id`.
    public var forkId: String
    /// `ruleset_version`.
    public var rulesetVersion: String
    /// `adoption_count`.
    public var adoptionCount: Int

    /// Makes the payload from its fields.
    public init(forkId: String, rulesetVersion: String, adoptionCount: Int) {
        self.forkId = forkId
        self.rulesetVersion = rulesetVersion
        self.adoptionCount = adoptionCount
    }

    enum CodingKeys: String, CodingKey {
        case forkId = "fork_id"
        case rulesetVersion = "ruleset_version"
        case adoptionCount = "adoption_count"
    }
}
