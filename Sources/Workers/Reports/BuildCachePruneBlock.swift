import Store

/// The `build_cache_prune` block: whether the leader prunes build caches, with what command and
/// how often, and its last run (exit status, reclaimed bytes, error).
public struct BuildCachePruneBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope = QueueReportScope.all
        let command: [String]
        let intervalSeconds: Double
        let timeoutSeconds: Double
        let lastRun: BuildCachePruneStore.Run?
    }

    public let key = "build_cache_prune"
    let enabled: Bool
    let settings: BuildCachePruner.Settings

    public init(enabled: Bool, settings: BuildCachePruner.Settings) {
        self.enabled = enabled
        self.settings = settings
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(
            // A configured secret in the argv (a registry token) is not shown.
            enabled: enabled, command: settings.command.map { SecretRedactor.shared.redact($0) },
            intervalSeconds: settings.interval.seconds,
            timeoutSeconds: settings.timeout.seconds, lastRun: try await BuildCachePruneStore(pool: pool).lastRun())
    }
}
