import Logging
import Store
import Workers

extension ReplicaRuntime {
    /// The leader's maintenance duties this configuration switches on, in the order they start:
    /// the reaper's (`ORCH_REAPER_ENABLED`), the reconciler (`ORCH_RECONCILE_ENABLED`; the
    /// reaper's `stranded-tasks` pass repairs first when it is on) and the build-cache pruner
    /// (`ORCH_BUILD_CACHE_PRUNE_ENABLED`). Apart from `serve` so the kill switches can be tested.
    static func maintenanceDuties(
        configuration: AppConfiguration, pool: ConnectionPool, replicaID: String, alerts: Alerts, logger: Logger
    ) -> [LeaderDuty] {
        var duties: [LeaderDuty] = []
        if configuration.reaperEnabled {
            duties += QueueMaintenance.duties(
                pool: pool, replicaID: replicaID, heartbeatInterval: configuration.heartbeatInterval,
                heartbeatTTL: configuration.heartbeatTTL, retention: configuration.jobRetention,
                webhookRetention: configuration.webhookRetention, repairFirst: configuration.reconcileEnabled,
                agentEventRetention: configuration.agentLogRetention, logger: logger)
            duties.append(
                AgentOrphans.duty(
                    pool: pool, interval: configuration.heartbeatInterval, staleAfter: configuration.heartbeatTTL,
                    replicaID: replicaID, alerts: alerts, logger: logger))
        }
        if configuration.reconcileEnabled {
            duties.append(
                Reconciler(pool: pool, logger: logger).leaderDuty(
                    interval: configuration.reconcileInterval, replicaID: replicaID, runs: MaintenanceStore(pool: pool))
            )
        }
        if configuration.buildCachePruneEnabled {
            duties.append(
                BuildCachePruner(
                    settings: configuration.buildCachePrune, directory: configuration.workdir, replicaID: replicaID,
                    pool: pool, logger: logger
                ).leaderDuty)
        }
        return duties
    }
}
