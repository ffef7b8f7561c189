import Foundation

/// The reconciler's repairs (the leader's `reconcile` duty): states that a lost write or a missed
/// wake-up left behind, put right with the transitions that would have happened. Each repair
/// re-checks its task under the row lock, so it never acts beside a transition that committed
/// meanwhile.
extension TaskStore {
    /// Active tasks with no live stage job and no job row at all for their current visit (a lost
    /// job row, a lost enqueue): each gets its stage job back — the
    /// `post_deploy_watch` of a deploy still watching, else the `run_stage` of its current visit.
    ///
    /// A job of the current visit that failed, was cancelled or completed without moving the task
    /// is left to ``holdStranded(limit:)``: that is an error or an operator's decision a human
    /// should see, and enqueueing it again would retry (or deploy) forever. Returns the work items repaired.
    public func repairStranded(limit: Int = 100) async throws -> [String] {
        let candidates = try await strandedCandidates(limit: limit)
        var repaired: [String] = []
        for workItem in candidates {
            if try await repairStranded(workItem: workItem) { repaired.append(workItem) }
        }
        return repaired
    }

    /// One task's repair, under its row lock; true when a job was enqueued.
    private func repairStranded(workItem: String) async throws -> Bool {
        try await pool.withTransaction { connection -> Bool in
            guard
                let row = try await connection.query(
                    "SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1 FOR UPDATE", [workItem]
                ).first
            else { return false }
            let task = try TaskRecord(row: row)
            guard task.state.status == .active, task.state.stage != .done else { return false }
            let watching = try await connection.query(
                "SELECT merge_sha FROM deploy_watches WHERE work_item = $1 AND visit = $2 AND result = 'watching'",
                [workItem, task.visit]
            ).first
            // The job this visit is waiting for; any row of it at all (a completed, failed or
            // cancelled one) means it was not lost, and that is the backstop's to judge. A new
            // statement sees what committed while this waited for the row lock.
            let kind = watching == nil ? RunStageJob.kind : PostDeployWatchJob.kind
            let existing: Int = try await connection.query(
                """
                SELECT count(*) AS n FROM jobs WHERE payload->>'work_item' = $1
                  AND ((kind = ANY($2::text[]) AND status IN ('queued', 'running'))
                       OR (kind = $3::text AND (payload->>'visit')::int = $4::int
                           AND ($3::text <> $5::text OR payload->>'stage' = $6::text)))
                """,
                [
                    workItem, PostgresArray(Self.liveJobKinds), kind, task.visit, RunStageJob.kind,
                    task.state.stage.rawValue,
                ]
            ).first!.decode("n")
            guard existing == 0 else { return false }
            if let watching {
                let job = try PostDeployWatchJob.job(
                    .init(work_item: workItem, visit: task.visit, merge_sha: try watching.decode("merge_sha")))
                guard try await JobStore(pool: pool).enqueue([job], on: connection).first ?? nil != nil else {
                    return false
                }
                try await recordRepair(of: task, job: kind, on: connection)
                return true
            }
            do {
                try await enqueueStage(task.currentVisit, workItem: workItem, on: connection)
            } catch is DuplicateStageJob {
                return false
            }
            try await recordRepair(of: task, job: kind, on: connection)
            return true
        }
    }

    /// The repair's `reconciled` event on the task, so its history says why a job reappeared.
    private func recordRepair(of task: TaskRecord, job kind: String, on connection: Connection) async throws {
        try await Self.recordEvent(
            taskID: task.id, event: "reconciled", from: task.state, to: task.state,
            reason:
                "the \(kind) job of the \(task.state.stage.rawValue) visit \(task.visit) was missing; enqueued again",
            actor: "reconciler", on: connection)
    }

    /// Repositories with tasks `waiting` at the serial gate: the reconciler opens each gate for
    /// what its free slots allow (a slot freed while nobody opened it). Frozen or full gates stay
    /// shut — ``openSerialGate(repo:)`` asks the gate itself.
    public func repositoriesWithWaitingTasks() async throws -> [String] {
        try await pool.query(
            "SELECT DISTINCT repo FROM tasks WHERE status = 'waiting' AND repo IS NOT NULL ORDER BY repo"
        ).rows.map { try $0.decode("repo") }
    }

    /// Blocked tasks whose dependencies are all done (their release was missed): each is
    /// unblocked as the finishing dependency would have. Returns the work items released.
    public func releaseUnblocked(limit: Int = 100) async throws -> [String] {
        let candidates: [String] = try await pool.query(
            """
            SELECT t.work_item FROM tasks t WHERE t.status = 'blocked'
              AND NOT EXISTS (SELECT 1 FROM task_dependencies d LEFT JOIN tasks dt ON dt.work_item = d.depends_on
                              WHERE d.work_item = t.work_item AND (dt.status IS NULL OR dt.status <> 'done'))
            ORDER BY t.updated_at LIMIT $1
            """,
            [limit]
        ).rows.map { try $0.decode("work_item") }
        var released: [String] = []
        for workItem in candidates {
            let task = try await pool.withTransaction {
                try await applyDependencies(workItem: workItem, refused: [], on: $0)
            }
            if task?.state.status != .blocked { released.append(workItem) }
        }
        return released
    }
}
