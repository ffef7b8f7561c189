import Logging
import Store

/// The leader's queue duties: rescue abandoned jobs, sweep dead replicas, prune old rows.
public enum QueueMaintenance {
    /// The duties, for a `LeaderElector`.
    public static func duties(
        pool: ConnectionPool, heartbeatInterval: Duration, heartbeatTTL: Duration, retention: Duration, logger: Logger
    ) -> [LeaderDuty] {
        let jobs = JobStore(pool: pool)
        let replicas = ReplicaStore(pool: pool)
        return [
            LeaderDuty(name: "rescue", interval: heartbeatInterval) {
                let rescued = try await jobs.rescueAbandoned(staleAfter: heartbeatTTL)
                if !rescued.isEmpty {
                    logger.warning("rescued abandoned jobs", metadata: ["job.ids": "\(rescued.prefix(20))", "job.count": "\(rescued.count)"])
                }
            },
            LeaderDuty(name: "replica-sweep", interval: heartbeatTTL) {
                let swept = try await replicas.sweep(staleAfter: heartbeatTTL, retention: .seconds(86400))
                if swept.marked > 0 {
                    logger.warning("replicas stopped heartbeating", metadata: ["replica.count": "\(swept.marked)"])
                }
            },
            LeaderDuty(name: "prune", interval: .seconds(600)) {
                let pruned = try await jobs.prune(retention: retention)
                if pruned > 0 { logger.info("pruned finished jobs", metadata: ["job.count": "\(pruned)"]) }
            },
        ]
    }
}
