import Foundation

/// Stage jobs that fail for good, and tasks left without a live stage job.
extension TaskStore {
    /// A `run_stage` job failed for good (`canRetry`: its retries are used up; else an error
    /// retrying cannot fix): its task leaves the stage visit the job was for — `held`, or `failed`
    /// — with the error as the reason, a lesson and (through its event) a notification, in the
    /// caller's transaction: the one that marks the job failed. A task that left that visit
    /// meanwhile is left alone. Returns the task when it moved.
    @discardableResult
    public func stageJobFailed(
        _ payload: StageJobPayload, error: String, canRetry: Bool, policy: StagePolicy = .init(),
        on connection: Connection
    ) async throws -> TaskRecord? {
        guard let stage = TaskStage(rawValue: payload.stage) else { return nil }
        var about = payload.visit.map { StageVisit(stage: stage, visit: $0) }
        if about == nil {
            // A job from before visits were recorded: it is about the current visit if the stage matches.
            guard
                let row = try await connection.query(
                    "SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1 FOR UPDATE", [payload.work_item]
                ).first
            else { return nil }
            let task = try TaskRecord(row: row)
            guard task.state.stage == stage else { return nil }
            about = task.currentVisit
        }
        let what = canRetry ? "gave up after its retries" : "failed"
        let reason = "the \(stage.rawValue) job \(what): \(error)"
        do {
            return try await apply(
                .stageErrored(reason: String(reason.prefix(4000)), canRetry: canRetry), workItem: payload.work_item,
                actor: "system", reason: String(reason.prefix(2000)), about: about, policy: policy, fence: nil,
                alongside: nil, on: connection)
        } catch is StaleOutcome {
            return nil
        } catch is IllegalTransition {
            return nil
        }
    }

    /// The job kinds that keep an active task alive: its stage job, and — between a deploy and
    /// its verdict — the post-deploy watch, which the deploy job hands over to in its completing
    /// transaction (a task healthy-watching is not stranded).
    static let liveJobKinds = [RunStageJob.kind, PostDeployWatchJob.kind]

    /// The leader's backstop for the invariant "an active task has a live stage job": a stage job
    /// that ended without its task moving on (rescued into `failed` after its replicas died
    /// `max_attempts` times, cancelled by an operator through `/jobs`, a job row lost) leaves the
    /// task `held` with the last job's error, a lesson and a notification, so `/retry` can start
    /// it again. Each task is re-checked under its row lock: a transition commits its next job in
    /// the same transaction, so a task seen without one really has none. Returns the work items held.
    ///
    /// With the reconciler on, the leader's pass runs ``repairStranded(limit:)`` first: a task whose
    /// job row was lost gets it back, and only what repair leaves (a failed, cancelled or completed
    /// job of the visit) is held here.
    public func holdStranded(limit: Int = 100) async throws -> [String] {
        let candidates = try await strandedCandidates(limit: limit)
        var held: [String] = []
        for workItem in candidates {
            let moved = try await pool.withTransaction { connection -> Bool in
                guard
                    let row = try await connection.query(
                        "SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1 FOR UPDATE", [workItem]
                    ).first
                else { return false }
                let task = try TaskRecord(row: row)
                // A new statement sees what committed while this waited for the row lock.
                let jobs = try await connection.query(
                    """
                    SELECT status, last_error FROM jobs WHERE kind = ANY($1::text[]) AND payload->>'work_item' = $2
                    ORDER BY id DESC LIMIT 50
                    """,
                    [PostgresArray(Self.liveJobKinds), workItem]
                ).rows
                let statuses = try jobs.map { try $0.decode("status", as: String.self) }
                guard task.state.status == .active, task.state.stage != .done,
                    !statuses.contains("queued"), !statuses.contains("running")
                else { return false }
                let last = try jobs.first.map {
                    (try $0.decode("status", as: String.self), try $0.decode("last_error", as: String?.self))
                }
                let reason =
                    last.map { "its last stage job ended \($0.0): \($0.1 ?? "no error recorded")" }
                    ?? "it has no stage job"
                _ = try await apply(
                    .stageErrored(reason: "\(task.state.stage.rawValue) stranded: \(reason)", canRetry: true),
                    workItem: workItem,
                    actor: "system", reason: String("stranded: \(reason)".prefix(2000)), about: task.currentVisit,
                    policy: .init(), fence: nil, alongside: nil, on: connection)
                return true
            }
            if moved { held.append(workItem) }
        }
        return held
    }

    /// Active tasks with no queued or running stage job, oldest first: the candidates of the
    /// stranded-task repair and hold, each re-checked under its row lock.
    func strandedCandidates(limit: Int) async throws -> [String] {
        try await pool.query(
            """
            SELECT work_item FROM tasks t
            WHERE status = 'active' AND stage <> 'done'
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = ANY($1::text[]) AND j.payload->>'work_item' = t.work_item
                              AND j.status IN ('queued', 'running'))
            ORDER BY updated_at LIMIT $2
            """,
            [PostgresArray(Self.liveJobKinds), limit]
        ).rows.map { try $0.decode("work_item", as: String.self) }
    }
}
