import Logging
import Store

/// The leader's queue duties (the reaper): rescue abandoned jobs, hold tasks left without a live
/// stage job, sweep dead replicas and the merge-lease rows they left, prune old jobs and webhook deliveries. Each run is recorded in `maintenance_runs` for the `/queue` `reaper` block.
public enum QueueMaintenance {
    /// The name the webhook-pruning duty is recorded under in `maintenance_runs`.
    public static let webhookPruneDuty = "webhook-prune"
    /// The name of the duty that holds active tasks left without a live stage job.
    public static let strandedTaskDuty = "stranded-tasks"
    /// The name of the duty that deletes `merge_leases` rows whose holder no longer holds the lock.
    public static let mergeLeaseSweepDuty = "merge-lease-sweep"
    /// The name of the duty that deletes stored agent output (`agent_run_events`) past retention.
    public static let agentEventsPruneDuty = "agent-events-prune"

    /// The duties, for a `LeaderElector`.
    /// `repairFirst` (the reconciler is on) lets the stranded-task pass repair before it holds.
    /// `webhookRetention` is how long finished webhook deliveries are kept (and redeliveries
    /// recognised as duplicates).
    public static func duties(
        pool: ConnectionPool, replicaID: String, heartbeatInterval: Duration, heartbeatTTL: Duration,
        retention: Duration, webhookRetention: Duration = WebhookStore.defaultRetention, repairFirst: Bool = false,
        agentEventRetention: Duration = .seconds(14 * 86400), logger: Logger
    ) -> [LeaderDuty] {
        let jobs = JobStore(pool: pool)
        let webhooks = WebhookStore(pool: pool)
        let replicas = ReplicaStore(pool: pool)
        let runs = MaintenanceStore(pool: pool)
        func recorded(
            _ name: String, interval: Duration, _ body: @escaping @Sendable () async throws -> Int
        ) -> LeaderDuty {
            Self.recorded(name, interval: interval, replicaID: replicaID, runs: runs, logger: logger, body)
        }
        return [
            recorded("rescue", interval: heartbeatInterval) {
                let rescued = try await jobs.rescueAbandoned(staleAfter: heartbeatTTL)
                if !rescued.isEmpty {
                    logger.warning(
                        "rescued abandoned jobs",
                        metadata: ["job.ids": "\(rescued.prefix(20))", "job.count": "\(rescued.count)"])
                }
                return rescued.count
            },
            recorded(strandedTaskDuty, interval: heartbeatTTL) {
                if repairFirst {
                    // The reconciler's repair goes first, so a task whose job row was lost gets it
                    // back instead of being held; what it cannot repair is held below. Its repairs
                    // count in the reconciler's record, where `/queue` shows them.
                    let repaired = try await TaskStore(pool: pool).repairStranded()
                    Reconciler.logRepaired(repaired, logger: logger)
                    if !repaired.isEmpty {
                        try? await runs.record(
                            duty: Reconciler.dutyName, replicaID: replicaID, affected: repaired.count, error: nil)
                    }
                }
                let held = try await TaskStore(pool: pool).holdStranded()
                if !held.isEmpty {
                    logger.error(
                        "active tasks without a live stage job were held",
                        metadata: ["task.work_items": "\(held.prefix(20))"])
                }
                return held.count
            },
            recorded("replica-sweep", interval: heartbeatTTL) {
                let swept = try await replicas.sweep(staleAfter: heartbeatTTL, retention: .seconds(86400))
                if swept.marked > 0 {
                    logger.warning("replicas stopped heartbeating", metadata: ["replica.count": "\(swept.marked)"])
                }
                return swept.marked
            },
            recorded("prune", interval: .seconds(600)) {
                let pruned = try await jobs.prune(retention: retention)
                if pruned > 0 { logger.info("pruned finished jobs", metadata: ["job.count": "\(pruned)"]) }
                return pruned
            },
            recorded(mergeLeaseSweepDuty, interval: heartbeatTTL) {
                let swept = try await MergeLeaseStore(pool: pool).pruneStale()
                if swept > 0 {
                    logger.notice(
                        "removed merge lease rows of holders that are gone", metadata: ["lease.count": "\(swept)"])
                }
                return swept
            },
            recorded(agentEventsPruneDuty, interval: .seconds(600)) {
                // Agent output is kept as long as the runs' log files (ORCH_AGENT_LOG_RETENTION).
                let pruned = try await AgentRunEventStore(pool: pool).prune(retention: agentEventRetention)
                if pruned > 0 { logger.info("pruned stored agent output", metadata: ["event.count": "\(pruned)"]) }
                return pruned
            },
            recorded(webhookPruneDuty, interval: .seconds(600)) {
                let pruned = try await webhooks.prune(retention: webhookRetention)
                if pruned > 0 { logger.info("pruned old webhook deliveries", metadata: ["webhook.count": "\(pruned)"]) }
                return pruned
            },
        ]
    }

    /// A leader duty whose body's outcome (rows it changed, or its error) is recorded in
    /// `maintenance_runs` under `name`; a failed record is only logged (the duty's own work is
    /// done, and the next run records again).
    public static func recorded(
        _ name: String, interval: Duration, replicaID: String, runs: MaintenanceStore, logger: Logger,
        _ body: @escaping @Sendable () async throws -> Int
    ) -> LeaderDuty {
        LeaderDuty(name: name, interval: interval) {
            let affected: Int
            do {
                affected = try await body()
            } catch {
                try? await runs.record(duty: name, replicaID: replicaID, affected: 0, error: "\(error)")
                throw error
            }
            do {
                try await runs.record(duty: name, replicaID: replicaID, affected: affected, error: nil)
            } catch {
                logger.warning(
                    "could not record a maintenance run", metadata: ["duty": "\(name)", "db.error": "\(error)"])
            }
        }
    }
}
