import Foundation

/// The `tasks` and `task_events` tables. Stage and status change only through `TaskLifecycle`.
public struct TaskStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Creates the task if new (in `TaskState.initial`) or refreshes its work-item facts; the
    /// stage, status and track of an existing task are left to the state machine. Returns the
    /// task and whether it was created.
    ///
    /// Plane deliveries can be partial and arrive out of order: a `nil` title, description,
    /// labels, auto or state keeps the stored value, and with `planeUpdatedAt` (the work item's
    /// `updated_at`) the update applies only when newer than the one the task holds — else it
    /// throws `WorkItemUpdateRefused` and changes nothing. Without it the update applies (its
    /// order is unknown) and the stored stamp stays. A Plane issue belongs to one task: a
    /// delivery binding it to another work item (or another issue to this one) is refused too.
    @discardableResult
    public func upsert(
        workItem: String, repo: String?, title: String?, description: String?, labels: [String]?,
        track: TaskTrack, auto: Bool?, planeIssueID: String?, planeProjectID: String?, planeState: String?,
        planeUpdatedAt: Date? = nil, dependsOn: [String]? = nil
    ) async throws -> (task: TaskRecord, created: Bool) {
        try await pool.withTransaction { connection in
            try await Self.checkWorkItemUpdate(
                workItem: workItem, planeIssueID: planeIssueID, planeUpdatedAt: planeUpdatedAt, on: connection)
            let row: Row?
            do {
                // The conflict branch repeats the check's conditions: a task created by a delivery
                // racing this one (after the check found none) is not overwritten by an older one.
                row = try await connection.query(
                    """
                    INSERT INTO tasks (work_item, repo, title, description, labels, track, auto, plane_issue_id, plane_project_id,
                                       plane_state, plane_updated_at, visit)
                    VALUES ($1, $2, coalesce($3::text, ''), coalesce($4::text, ''), coalesce($5::text[], '{}'), $6,
                            coalesce($7::boolean, false), $8, $9, $10, $11::timestamptz, 1)
                    ON CONFLICT (work_item) DO UPDATE SET
                        repo = coalesce(EXCLUDED.repo, tasks.repo), title = coalesce($3::text, tasks.title),
                        description = coalesce($4::text, tasks.description), labels = coalesce($5::text[], tasks.labels),
                        auto = coalesce($7::boolean, tasks.auto), plane_state = coalesce(EXCLUDED.plane_state, tasks.plane_state),
                        plane_issue_id = coalesce(EXCLUDED.plane_issue_id, tasks.plane_issue_id),
                        plane_updated_at = coalesce(EXCLUDED.plane_updated_at, tasks.plane_updated_at), updated_at = now()
                    WHERE ($11::timestamptz IS NULL OR tasks.plane_updated_at IS NULL OR $11::timestamptz > tasks.plane_updated_at)
                      AND ($8::text IS NULL OR tasks.plane_issue_id IS NULL OR tasks.plane_issue_id = $8::text)
                    RETURNING \(TaskRecord.columns), (xmax = 0) AS created
                    """,
                    [
                        workItem, repo, title, description, labels.map(PostgresArray.init), track.rawValue, auto,
                        planeIssueID,
                        planeProjectID, planeState, planeUpdatedAt,
                    ]
                ).first
            } catch let error as PostgresError where error.isUniqueViolation {
                // Another transaction bound the issue to another work item since the check.
                throw WorkItemUpdateRefused(
                    description: "Plane issue \(planeIssueID ?? "?") already belongs to another task")
            }
            guard let row else {
                // The racing delivery committed: checking again now says why this one is refused.
                try await Self.checkWorkItemUpdate(
                    workItem: workItem, planeIssueID: planeIssueID, planeUpdatedAt: planeUpdatedAt, on: connection)
                throw WorkItemUpdateRefused(description: "task \(workItem) changed while this update was applied")
            }
            var task = try TaskRecord(row: row)
            let created = try row.decode("created", as: Bool.self)
            var waitingFor: [String] = []
            if let dependsOn {
                let refused = try await Self.storeDependencies(
                    workItem: workItem, dependsOn: dependsOn, source: .description, replacing: true, on: connection)
                if created {
                    waitingFor = try await Self.unfinishedDependencies(workItem: workItem, on: connection)
                    try await Self.recordRefusals(refused, of: task, on: connection)
                } else {
                    task = try await applyDependencies(workItem: workItem, refused: refused, on: connection) ?? task
                }
            }
            // A new task's first stage starts in the same transaction: created ⇔ its job exists,
            // unless it waits for a dependency (blocked, started when the last one is done).
            if created {
                if waitingFor.isEmpty {
                    try await enqueueStage(task.currentVisit, workItem: workItem, on: connection)
                } else {
                    task =
                        try await apply(
                            .blocked, workItem: workItem, actor: "dependencies",
                            reason: "waiting for \(waitingFor.joined(separator: ", "))", about: nil, policy: .init(),
                            fence: nil, alongside: nil, on: connection) ?? task
                }
            }
            return (task, created)
        }
    }

    /// The job kind that runs one stage of one task (``RunStageJob``).
    public static var stageJobKind: String { RunStageJob.kind }

    /// Enqueues the `run_stage` job of a stage visit (try `attempt`, with the gate's `feedback` on a
    /// retry). The dedupe key makes a second enqueue of the same try a no-op while it is queued or
    /// running; that is logged by the caller's transaction as a refusal, never silently lost.
    func enqueueStage(
        _ visit: StageVisit, workItem: String, attempt: Int = 0, feedback: String? = nil, on connection: Connection
    ) async throws {
        let job = try RunStageJob.job(
            StageJobPayload(
                work_item: workItem, stage: visit.stage.rawValue, visit: visit.visit, attempt: attempt,
                feedback: feedback))
        let ids = try await JobStore(pool: pool).enqueue([job], on: connection)
        guard ids.first ?? nil != nil else {
            throw DuplicateStageJob(dedupeKey: job.dedupeKey ?? "")
        }
    }

    /// Applies a state-machine event under the task's row lock, in one transaction: the new state,
    /// its `task_events` row, and every action the state machine returned (the next stage's job,
    /// cancelling stage jobs, a lesson). Throws `IllegalTransition` or `StaleOutcome` (nothing
    /// changed) or returns the new task; `nil` when there is no such task.
    ///
    /// A stage job's outcome passes its `fence`: the job row is completed in the same transaction,
    /// only if the job is still running under that replica and attempt — otherwise `JobFenceLost`
    /// is thrown and nothing is applied. `about` names the stage visit the outcome is for, and
    /// `alongside` runs extra writes (the branch head, the PR, the agent run's outcome) inside it.
    @discardableResult
    public func apply(
        _ event: TaskEvent, workItem: String, actor: String, reason: String? = nil, about: StageVisit? = nil,
        policy: StagePolicy = .init(), fence: JobLease? = nil,
        alongside: ((Connection) async throws -> Void)? = nil
    ) async throws -> TaskRecord? {
        try await pool.withTransaction { connection in
            try await apply(
                event, workItem: workItem, actor: actor, reason: reason, about: about, policy: policy, fence: fence,
                alongside: alongside, on: connection)
        }
    }

    /// `apply` inside the caller's transaction.
    func apply(
        _ event: TaskEvent, workItem: String, actor: String, reason: String?, about: StageVisit?, policy: StagePolicy,
        fence: JobLease?, alongside: ((Connection) async throws -> Void)?, on connection: Connection
    ) async throws -> TaskRecord? {
        var reason = reason
        // Lock order everywhere: the task row, then job rows (cancels do the same).
        guard
            let row = try await connection.query(
                "SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1 FOR UPDATE", [workItem]
            ).first
        else { return nil }
        if let fence { try await JobStore.completeFenced(fence, on: connection) }
        let task = try TaskRecord(row: row)
        var transition = try TaskLifecycle.decide(
            event, from: task.state, visit: task.visit, about: about, policy: policy)
        // Taking a slot of the repository's serial gate is decided under the gate's lock.
        if let repo = task.repo, !SerialGate.occupies(task.state), SerialGate.occupies(transition.state) {
            let gate = try await Self.serialGateVerdict(repo: repo, excluding: task.id, on: connection)
            if case .closed(let why) = gate {
                transition = try TaskLifecycle.decide(
                    event, from: task.state, visit: task.visit, about: about, policy: policy, gate: gate)
                reason = reason.map { "\($0); \(why)" } ?? why
            }
        }
        let next = transition.state
        let updated = try await connection.query(
            """
            UPDATE tasks SET stage = $2, status = $3, track = $4, visit = $5, updated_at = now() WHERE id = $1
            RETURNING \(TaskRecord.columns)
            """,
            [task.id, next.stage.rawValue, next.status.rawValue, next.track.rawValue, transition.visit]
        ).first!
        try await Self.recordEvent(
            taskID: task.id, event: transition.eventName, from: task.state, to: next, reason: reason, actor: actor,
            on: connection)
        for action in transition.actions {
            switch action {
            case .enqueueStage(let visit, let attempt, let feedback):
                try await enqueueStage(visit, workItem: workItem, attempt: attempt, feedback: feedback, on: connection)
            case .cancelStageJobs:
                let running = try await Self.cancelJobs(
                    workItem: workItem, reason: reason ?? "task cancelled", on: connection)
                if let lesson = Self.cancelledMidStage(task, runningJobs: running, reason: reason, actor: actor) {
                    _ = try await LessonStore.recordAuto(lesson, task: task, on: connection)
                }
            case .recordLesson(let type, let rootCause):
                let lesson = AutoLesson(
                    type: type, rootCause: String((rootCause ?? reason ?? transition.eventName).prefix(4000)))
                _ = try await LessonStore.recordAuto(lesson, task: task, on: connection)
            case .openSerialGate, .releaseDependents:
                break
            }
        }
        try await alongside?(connection)
        // Other tasks start last: after the outcome's own writes, so a freeze written alongside a
        // hold keeps the slot the hold frees from being taken in the same transaction.
        for action in transition.actions {
            switch action {
            case .openSerialGate:
                if let repo = task.repo { try await openSerialGate(repo: repo, on: connection) }
            case .releaseDependents:
                try await releaseDependents(of: workItem, on: connection)
            default:
                break
            }
        }
        return try TaskRecord(row: updated)
    }

    /// Appends a `task_events` row. Its id is taken now but becomes visible only at commit, so a
    /// later id can commit first: the shared lock, held until this transaction ends, tells the
    /// notifications cursor (`NotificationStore`) to wait rather than skip past this event.
    static func recordEvent(
        taskID: Int64, event: String, from: TaskState, to: TaskState, reason: String?, actor: String,
        on connection: Connection
    ) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock_shared($1, 0)", [AdvisoryLockKey.Namespace.taskEvents])
        try await connection.query(
            """
            INSERT INTO task_events (task_id, event, from_stage, to_stage, from_status, to_status, reason, actor)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            [
                taskID, event, from.stage.rawValue, to.stage.rawValue, from.status.rawValue, to.status.rawValue,
                SecretRedactor.shared.redact(reason), actor,
            ])
    }

    /// Cancels a task's queued stage jobs at once and asks the replicas running its running ones
    /// to stop them (`orch_cancel`; the owner kills the agent's process group). Only stage work:
    /// the notification jobs about what already happened are still sent.
    ///
    /// Returns the ids of the stage jobs that were running (a spared merge included): a cancel
    /// that interrupts work is worth a lesson (``cancelledMidStage(_:runningJobs:reason:actor:)``).
    @discardableResult
    static func cancelJobs(workItem: String, reason: String, on connection: Connection) async throws -> [Int64] {
        let running = try await connection.query(
            "SELECT id FROM jobs WHERE status = 'running' AND kind = $2 AND payload->>'work_item' = $1 ORDER BY id",
            [workItem, Self.stageJobKind]
        ).rows.map { try $0.decode("id", as: Int64.self) }
        try await connection.query(
            """
            UPDATE jobs SET status = 'cancelled', finished_at = now(), last_error = $2
            WHERE status = 'queued' AND kind = $3 AND payload->>'work_item' = $1
            """,
            [workItem, reason, Self.stageJobKind])
        // A merge in progress is not interrupted (half a merge is worse than a finished one): it
        // finishes, and its job then finds the task cancelled and stops there.
        try await connection.query(
            """
            WITH flagged AS (
                UPDATE jobs SET cancel_requested = true
                WHERE status = 'running' AND kind = $2 AND payload->>'work_item' = $1 AND payload->>'stage' <> 'merge'
                RETURNING id
            )
            SELECT pg_notify('orch_cancel', id::text) FROM flagged
            """,
            [workItem, Self.stageJobKind])
        return running
    }

    /// The task of a Plane issue uuid.
    public func task(planeIssueID: String) async throws -> TaskRecord? {
        try await pool.query("SELECT \(TaskRecord.columns) FROM tasks WHERE plane_issue_id = $1", [planeIssueID]).first
            .map(TaskRecord.init(row:))
    }

    /// Tasks not done, newest first (`GET /status`).
    public func notDone(limit: Int) async throws -> [TaskRecord] {
        try await pool.query(
            "SELECT \(TaskRecord.columns) FROM tasks WHERE status <> 'done' ORDER BY created_at DESC, id DESC LIMIT $1",
            [limit]
        ).rows.map(TaskRecord.init(row:))
    }

    /// How many times `event` happened to the task (e.g. review rounds).
    public func eventCount(workItem: String, event: TaskEvent) async throws -> Int {
        try await pool.query(
            """
            SELECT count(*) AS n FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE t.work_item = $1 AND e.event = $2
            """,
            [workItem, event.name]
        ).first!.decode("n")
    }

    /// One task by work item.
    public func task(workItem: String) async throws -> TaskRecord? {
        try await pool.query("SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1", [workItem]).first.map(
            TaskRecord.init(row:))
    }

    /// A task's history, oldest first.
    public func history(workItem: String) async throws -> [TaskHistoryEntry] {
        try await pool.withConnection { try await Self.history(workItem: workItem, on: $0) }
    }

    /// A task's history, oldest first, on the caller's connection.
    static func history(workItem: String, on connection: Connection) async throws -> [TaskHistoryEntry] {
        try await connection.query(
            """
            SELECT e.event, e.from_stage, e.to_stage, e.from_status, e.to_status, e.reason, e.actor, e.at
            FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE t.work_item = $1 ORDER BY e.id
            """,
            [workItem]
        ).rows.map { row in
            TaskHistoryEntry(
                event: try row.decode("event"), fromStage: try row.decode("from_stage"),
                toStage: try row.decode("to_stage"),
                fromStatus: try row.decode("from_status"), toStatus: try row.decode("to_status"),
                reason: try row.decode("reason"),
                actor: try row.decode("actor"), at: try row.decode("at"))
        }
    }
}
