import Logging
import Store

/// The steps a replica's start runs (`ReplicaRuntime` lists them in order).
extension StartupHousekeeping.Step {
    /// Lease reclaim: the jobs still leased to this replica's earlier incarnations (same name and
    /// host, process gone or already marked stopped) go back to the queue, and the `merge_leases`
    /// rows naming them are deleted once their lock is free. Recorded as `lease-reclaim`.
    public static func leaseReclaim(
        identity: ReplicaIdentity, staleAfter: Duration, pool: ConnectionPool, recorder: ReplicaDutyRecorder,
        logger: Logger
    ) -> Self {
        Self("lease reclaim", required: true) {
            var jobs = 0
            var leases = 0
            try await recorder.run(PreviousIncarnations.leaseReclaimDuty) {
                jobs = try await PreviousIncarnations.recover(
                    identity, staleAfter: staleAfter, pool: pool, logger: logger
                ).count
                leases = try await MergeLeaseStore(pool: pool).pruneStale(
                    incarnationsOf: identity.name, host: identity.host, except: identity.id)
                return jobs + leases
            }
            return ["jobs.reclaimed": "\(jobs)", "merge_leases.removed": "\(leases)"]
        }
    }

    /// Orphan recovery: the agents this replica's earlier incarnations left running on this host
    /// are killed and their runs closed (after the lease reclaim, which marks those incarnations
    /// stopped).
    public static func orphanRecovery(
        identity: ReplicaIdentity, pool: ConnectionPool, alerts: Alerts, logger: Logger
    ) -> Self {
        Self("orphan recovery", required: true) {
            let reaped = try await AgentOrphans.reapAtStartup(
                pool: pool, name: identity.name, host: identity.host, replicaID: identity.id, alerts: alerts,
                logger: logger)
            return ["agent_runs.closed": "\(reaped.runs.count)", "agent.killed": "\(reaped.killed.count)"]
        }
    }

    /// Log rotation: the reaper's `agent-log-prune`, once now.
    public static func logRotation(_ reaper: ReplicaReaper) -> Self {
        Self("log rotation") { ["logs.pruned": "\(try await reaper.pruneLogs())"] }
    }

    /// Worktree prune: the reaper's `worktree-prune`, once now.
    public static func worktreePrune(_ reaper: ReplicaReaper) -> Self {
        Self("worktree prune") { ["worktrees.pruned": "\(try await reaper.pruneWorktrees())"] }
    }
}
