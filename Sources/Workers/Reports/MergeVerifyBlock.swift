import Store

/// The `merge_verify` block: the merge gate's kill switch, the merge leases held now (live ones
/// only), the merge commits whose CI is awaited, the merge jobs waiting for a lease, and the
/// tasks held at merge with their last reason.
public struct MergeVerifyBlock: QueueReportBlock {
    /// The block's figures: the kill switch and the scope beside the summary's own keys.
    public struct Body: Encodable, Sendable {
        public let enabled: Bool
        public let scope: String
        public let outOfScope: [String]
        public let leases: [MergeLeaseStore.Lease]
        public let verifying: [MergeVerifySummary.Verification]
        public let waitingJobs: Int
        public let holds: [MergeVerifySummary.Hold]

        init(enabled: Bool, scope: GateScope, summary: MergeVerifySummary) {
            self.enabled = enabled
            self.scope = scope.scope
            outOfScope = scope.outOfScope
            leases = summary.leases
            verifying = summary.verifying
            waitingJobs = summary.waitingJobs
            holds = summary.holds
        }
    }

    public let key = "merge_verify"
    let enabled: Bool
    let scope: GateScope

    /// Creates the block; `enabled` is `ORCH_MERGE_GATE_ENABLED`.
    public init(enabled: Bool, repos: [RepositorySettings] = []) {
        self.enabled = enabled
        self.scope = GateScope(.mergeGate, repos: repos)
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(enabled: enabled, scope: scope, summary: try await MergeLeaseStore(pool: pool).summary())
    }
}
