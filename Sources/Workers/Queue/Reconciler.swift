import Logging
import Store

/// The leader's `reconcile` duty: puts right what a lost write or a missed wake-up left behind,
/// with the transition that would have happened, instead of waiting for an operator.
///
/// - an active task without a live stage job and without any job of its current visit (a job row
///   lost) gets that job again (``TaskStore/repairStranded(limit:)``);
/// - a repository with tasks waiting at the serial gate opens it for its free slots (a slot freed
///   while nobody opened it); frozen or full gates stay shut;
/// - a blocked task whose dependencies are all done is released.
///
/// The `stranded-tasks` duty stays the backstop: it runs the same repair first and holds only
/// what is left (a job of the visit that failed, was cancelled, or completed without moving the
/// task), so the two never undo each other.
public struct Reconciler: Sendable {
    /// The name runs are recorded under in `maintenance_runs` (the `/queue` `reconcile` block).
    public static let dutyName = "reconcile"

    let tasks: TaskStore
    let logger: Logger

    public init(pool: ConnectionPool, logger: Logger) {
        tasks = TaskStore(pool: pool)
        self.logger = logger
    }

    /// One pass; returns how many tasks it repaired (jobs enqueued, gates opened, tasks released).
    public func run() async throws -> Int {
        let repaired = try await tasks.repairStranded()
        Self.logRepaired(repaired, logger: logger)
        var started: [String] = []
        for repo in try await tasks.repositoriesWithWaitingTasks() {
            started += try await tasks.openSerialGate(repo: repo)
        }
        if !started.isEmpty {
            logger.warning(
                "reconciler opened serial gates nobody had opened",
                metadata: ["task.work_items": "\(started.prefix(20))"])
        }
        let released = try await tasks.releaseUnblocked()
        if !released.isEmpty {
            logger.warning(
                "reconciler released blocked tasks whose dependencies are done",
                metadata: ["task.work_items": "\(released.prefix(20))"])
        }
        return repaired.count + started.count + released.count
    }

    /// The leader duty, every `interval`, recorded in `maintenance_runs`.
    public func leaderDuty(interval: Duration, replicaID: String, runs: MaintenanceStore) -> LeaderDuty {
        QueueMaintenance.recorded(Self.dutyName, interval: interval, replicaID: replicaID, runs: runs, logger: logger) {
            try await run()
        }
    }

    /// Logs the tasks whose lost stage job was enqueued again.
    static func logRepaired(_ repaired: [String], logger: Logger) {
        guard !repaired.isEmpty else { return }
        logger.warning(
            "active tasks without their stage job got it again", metadata: ["task.work_items": "\(repaired.prefix(20))"]
        )
    }
}
