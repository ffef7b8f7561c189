import Foundation
import Store

/// The `reconcile` block: the kill switch, how often the leader reconciles, and its last run
/// (from `maintenance_runs`, so any replica answers the same) with the tasks it repaired.
public struct ReconcileBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope = QueueReportScope.all
        let intervalSeconds: Double
        let replica: String?
        let lastRunAt: Date?
        let runs: Int
        let lastRepaired: Int
        let totalRepaired: Int
        let lastError: String?
    }

    public let key = "reconcile"
    let enabled: Bool
    let interval: Duration

    public init(enabled: Bool, interval: Duration) {
        self.enabled = enabled
        self.interval = interval
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let run = try await MaintenanceStore(pool: pool).runs().first { $0.duty == Reconciler.dutyName }
        return Body(
            enabled: enabled, intervalSeconds: interval.seconds, replica: run?.replicaID, lastRunAt: run?.lastRunAt,
            runs: run?.runs ?? 0, lastRepaired: run?.lastAffected ?? 0, totalRepaired: run?.totalAffected ?? 0,
            lastError: run?.lastError)
    }
}
