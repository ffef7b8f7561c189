import Logging
import Store
import Workers

extension ReplicaRuntime {
    /// The reaper's every-replica half (worktree and agent-log pruning of this replica's own
    /// disk), or nil with `ORCH_REAPER_ENABLED=0`. Apart from `serve` so the switch can be tested.
    static func replicaReaper(
        configuration: AppConfiguration, sweeper: WorkspaceSweeper, identity: ReplicaIdentity, pool: ConnectionPool,
        logger: Logger
    ) -> ReplicaReaper? {
        guard configuration.reaperEnabled else { return nil }
        return ReplicaReaper(
            settings: .init(
                worktreeRetention: configuration.worktreeRetention, logDirectory: configuration.workdir + "/logs",
                logRetention: configuration.agentLogRetention),
            sweeper: sweeper, recorder: ReplicaDutyRecorder(pool: pool, identity: identity, logger: logger),
            logger: logger)
    }

    /// The startup housekeeping, in order: the lease reclaim marks the earlier incarnations
    /// stopped, which the orphan recovery needs to find their agents; then the files, the
    /// ownership check last (`ORCH_FS_NORMALIZE_ENABLED`).
    static func startupSteps(
        configuration: AppConfiguration, identity: ReplicaIdentity, pool: ConnectionPool, alerts: Alerts,
        reaper: ReplicaReaper?, fileOwnership: FileOwnershipCheck?, logger: Logger
    ) -> [StartupHousekeeping.Step] {
        var steps: [StartupHousekeeping.Step] = [
            .leaseReclaim(
                identity: identity, staleAfter: configuration.heartbeatTTL, pool: pool,
                recorder: ReplicaDutyRecorder(pool: pool, identity: identity, logger: logger), logger: logger),
            .orphanRecovery(identity: identity, pool: pool, alerts: alerts, logger: logger),
        ]
        if let reaper {
            steps += [.logRotation(reaper), .worktreePrune(reaper)]
        } else {
            steps += [
                .skipped("log rotation", reason: "ORCH_REAPER_ENABLED=0"),
                .skipped("worktree prune", reason: "ORCH_REAPER_ENABLED=0"),
            ]
        }
        if let fileOwnership {
            // Its one line (a warning with the healing command when files changed hands) is its own.
            steps.append(
                StartupHousekeeping.Step("ownership check", logsItself: true) {
                    let scan = await fileOwnership.startup().scan
                    return ["fs.scanned": "\(scan.scanned)", "fs.mismatched": "\(scan.mismatched)"]
                })
        } else {
            steps.append(.skipped("ownership check", reason: "ORCH_FS_NORMALIZE_ENABLED=0"))
        }
        return steps
    }
}
