import Foundation
import Logging
import Store

#if canImport(Glibc)
import Glibc
#endif

/// Agent runs whose replica died (docs/architecture.md, Replicas): a restarted replica kills the agents its
/// previous life left running on this host and closes their runs; the leader closes the runs of
/// replicas that are gone (their jobs are rescued by the queue and run again elsewhere).
public enum AgentOrphans {
    /// At startup, after the previous incarnations were marked stopped: kills their agents still
    /// alive here (only the very process: pid and start time must match, so a recycled pid is
    /// never hit) and closes their runs with exit −1. Returns the runs it handled and the pids it
    /// killed.
    @discardableResult
    public static func reapAtStartup(
        pool: ConnectionPool, name: String, host: String, replicaID: String, alerts: Alerts, logger: Logger
    ) async throws -> (runs: [AgentRun], killed: [Int]) {
        let store = AgentRunStore(pool: pool)
        let orphans = try await store.orphans(name: name, host: host, currentReplicaID: replicaID)
        var killed: [Int] = []
        for run in orphans {
            guard let pid = run.pid, let start = run.processStart, ProcStat.startTime(pid: pid) == start else {
                continue
            }
            _ = kill(-pid_t(pid), SIGKILL)
            killed.append(pid)
        }
        try await store.closeLost(
            ids: orphans.filter { $0.endedAt == nil }.map(\.id), reason: "orphaned: replica \(name) restarted")
        if !orphans.isEmpty {
            // The alert: an operator should know work was lost and redone.
            logger.error(
                "orphaned agent runs of a previous incarnation closed",
                metadata: [
                    "agent.runs": "\(orphans.map(\.id))", "agent.killed_pids": "\(killed)",
                ])
            await alerts.raise(
                "Replica \(name) on \(host) restarted: closed \(orphans.count) orphaned agent run(s) \(orphans.map(\.id)), killed pids \(killed). Their stages run again.",
                key: "orphans:\(replicaID)")
        }
        return (orphans, killed)
    }

    /// The name the leader's duty is recorded under in `maintenance_runs`.
    public static let dutyName = "agent-runs"

    /// The leader's duty: closes runs of replicas that are gone, judged by the database clock.
    /// Each run is recorded (runs closed) for the `/queue` `reaper` block.
    public static func duty(
        pool: ConnectionPool, interval: Duration, staleAfter: Duration, replicaID: String, alerts: Alerts,
        logger: Logger
    ) -> LeaderDuty {
        let store = AgentRunStore(pool: pool)
        return QueueMaintenance.recorded(
            dutyName, interval: interval, replicaID: replicaID, runs: MaintenanceStore(pool: pool), logger: logger
        ) {
            let closed = try await store.closeRunsOfGoneReplicas(staleAfter: staleAfter)
            if !closed.isEmpty {
                logger.error(
                    "agent runs of gone replicas closed",
                    metadata: [
                        "agent.runs": "\(closed.map(\.id))", "replica.ids": "\(Set(closed.map(\.replicaID)).sorted())",
                    ])
                let replicas = Set(closed.map(\.replicaID)).sorted()
                await alerts.raise(
                    "Replica(s) \(replicas.joined(separator: ", ")) gone: closed agent run(s) \(closed.map(\.id)); their jobs are rescued by the queue.",
                    key: "gone:\(closed.map(\.id).map(String.init).joined(separator: ","))")
            }
            return closed.count
        }
    }
}
