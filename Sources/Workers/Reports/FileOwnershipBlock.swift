import Store

/// The `fs_ownership` block: the kill switch and settings of the file-ownership check and, per
/// host, its last scan (each replica scans its own work dir). The answering replica first
/// refreshes its own scan when it is older than `ORCH_FS_NORMALIZE_TTL`.
public struct FileOwnershipBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope = QueueReportScope.all
        let maxEntries: Int
        let ttlSeconds: Double
        /// Whether the opt-in chown is on (`ORCH_FS_NORMALIZE_CHOWN`).
        let chown: Bool
        let hosts: [FileOwnershipStore.HostScan]
    }

    public let key = "fs_ownership"
    let enabled: Bool
    let settings: FileOwnershipCheck.Settings
    let check: FileOwnershipCheck?

    /// `check` is this replica's (nil when the check is off).
    public init(enabled: Bool, settings: FileOwnershipCheck.Settings, check: FileOwnershipCheck?) {
        self.enabled = enabled
        self.settings = settings
        self.check = check
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        if enabled, let check { _ = await check.current() }
        return Body(
            enabled: enabled, maxEntries: settings.maxEntries, ttlSeconds: settings.ttl.seconds, chown: settings.chown,
            hosts: try await FileOwnershipStore(pool: pool).scans())
    }
}
