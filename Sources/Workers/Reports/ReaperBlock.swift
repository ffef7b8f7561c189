import Store

/// The `reaper` block: the maintenance duties' kill switch, the leader that runs the leader's
/// duties, their settings, per leader duty its last run, and per every-replica duty (the files
/// of each replica's own disk, the lease reclaim at start) each replica's last run.
public struct ReaperBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let enabled: Bool
        public let scope = QueueReportScope.all
        public let leader: String?
        public let heartbeatTTLSeconds: Double
        public let jobRetentionHours: Double
        public let worktreeRetentionHours: Double
        public let agentLogRetentionHours: Double
        /// The leader's duties, by duty name.
        public let duties: [String: MaintenanceStore.Run]
        /// Every replica's duties, by duty name: one record per replica (name and host).
        public let replicaDuties: [String: [ReplicaMaintenanceStore.Run]]

        /// Creates the block's figures.
        public init(
            enabled: Bool, leader: String?, heartbeatTTL: Duration, jobRetention: Duration,
            worktreeRetention: Duration, agentLogRetention: Duration, runs: [MaintenanceStore.Run],
            replicaRuns: [ReplicaMaintenanceStore.Run]
        ) {
            self.enabled = enabled
            self.leader = leader
            heartbeatTTLSeconds = heartbeatTTL.seconds
            jobRetentionHours = jobRetention.seconds / 3600
            worktreeRetentionHours = worktreeRetention.seconds / 3600
            agentLogRetentionHours = agentLogRetention.seconds / 3600
            duties = Dictionary(uniqueKeysWithValues: runs.map { ($0.duty, $0) })
            replicaDuties = Dictionary(grouping: replicaRuns, by: \.duty)
        }
    }

    public let key = "reaper"
    let enabled: Bool
    let heartbeatTTL: Duration
    let jobRetention: Duration
    let worktreeRetention: Duration
    let agentLogRetention: Duration

    public init(
        enabled: Bool, heartbeatTTL: Duration, jobRetention: Duration, worktreeRetention: Duration,
        agentLogRetention: Duration
    ) {
        self.enabled = enabled
        self.heartbeatTTL = heartbeatTTL
        self.jobRetention = jobRetention
        self.worktreeRetention = worktreeRetention
        self.agentLogRetention = agentLogRetention
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(
            enabled: enabled, leader: leader, heartbeatTTL: heartbeatTTL, jobRetention: jobRetention,
            worktreeRetention: worktreeRetention, agentLogRetention: agentLogRetention,
            // The reconciler records its runs in the same table; its own block shows them.
            runs: try await MaintenanceStore(pool: pool).runs().filter { $0.duty != Reconciler.dutyName },
            replicaRuns: try await ReplicaMaintenanceStore(pool: pool).runs())
    }
}
