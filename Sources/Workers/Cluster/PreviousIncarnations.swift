import Foundation
import Logging
import Store

/// Startup recovery of a replica's earlier lives: a replica restarted under the same name on the
/// same host finds the rows of its previous process, and requeues their running jobs at once
/// instead of waiting out the heartbeat TTL — but only when that process is really gone.
public enum PreviousIncarnations {
    /// The name the startup reclaim is recorded under in `replica_maintenance_runs`.
    public static let leaseReclaimDuty = "lease-reclaim"

    /// Requeues the jobs of this name's earlier incarnations on this host whose process is dead
    /// (or is this very process, after a PID reuse), or that are already marked stopped. Returns
    /// the ids of the requeued jobs.
    @discardableResult
    public static func recover(
        _ identity: ReplicaIdentity, staleAfter: Duration, pool: ConnectionPool, logger: Logger
    ) async throws -> [Int64] {
        let pid = identity.pid
        let recovered = try await ReplicaStore(pool: pool).recoverPreviousIncarnations(
            id: identity.id, name: identity.name, host: identity.host, staleAfter: staleAfter,
            isDead: { other in other == pid || isGone(pid: other) })
        if !recovered.isEmpty {
            logger.warning(
                "requeued jobs of a previous incarnation",
                metadata: ["job.ids": "\(recovered.prefix(20))", "job.count": "\(recovered.count)"])
        }
        return recovered
    }

    /// Whether no process has this PID (`kill(pid, 0)` fails with ESRCH). A process of another
    /// user answers EPERM: it exists, so it is not gone.
    static func isGone(pid: Int) -> Bool {
        kill(pid_t(pid), 0) != 0 && errno == ESRCH
    }
}
