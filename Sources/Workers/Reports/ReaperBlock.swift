import Store

/// The `reaper` block: the maintenance duties' kill switch, the leader that runs them, their
/// settings, and per duty its last run.
public struct ReaperBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let enabled: Bool
        public let scope = QueueReportScope.all
        public let leader: String?
        public let heartbeatTTLSeconds: Double
        public let jobRetentionHours: Double
        /// By duty name.
        public let duties: [String: MaintenanceStore.Run]

        /// Creates the block's figures.
        public init(
            enabled: Bool, leader: String?, heartbeatTTL: Duration, jobRetention: Duration, runs: [MaintenanceStore.Run]
        ) {
            self.enabled = enabled
            self.leader = leader
            heartbeatTTLSeconds = heartbeatTTL.seconds
            jobRetentionHours = jobRetention.seconds / 3600
            duties = Dictionary(uniqueKeysWithValues: runs.map { ($0.duty, $0) })
        }
    }

    public let key = "reaper"
    let enabled: Bool
    let heartbeatTTL: Duration
    let jobRetention: Duration

    public init(enabled: Bool, heartbeatTTL: Duration, jobRetention: Duration) {
        self.enabled = enabled
        self.heartbeatTTL = heartbeatTTL
        self.jobRetention = jobRetention
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(
            enabled: enabled, leader: leader, heartbeatTTL: heartbeatTTL, jobRetention: jobRetention,
            runs: try await MaintenanceStore(pool: pool).runs())
    }
}
