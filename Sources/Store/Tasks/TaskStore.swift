import Foundation

/// A task row.
public struct TaskRecord: Sendable {
    public let id: Int64
    public let workItem: String
    public let repo: String?
    public let title: String
    public let description: String
    public let labels: [String]
    public let state: TaskState
    /// The stage visit counter (see `StageVisit`).
    public let visit: Int
    public let prNumber: Int?
    public let headSHA: String?
    public let mergeSHA: String?
    /// Combined CI state of the PR head (`pending`, `success`, `failure`; nil before any status).
    public let headCIState: String?
    /// Combined CI state of the merge commit.
    public let mergeCIState: String?
    public let createdAt: Date
    public let updatedAt: Date

    static let columns = """
        id, work_item, repo, title, description, labels, stage, status, track, auto, visit, pr_number, head_sha, merge_sha, \
        head_ci_state, merge_ci_state, created_at, updated_at
        """

    init(row: Row) throws {
        id = try row.decode("id")
        workItem = try row.decode("work_item")
        repo = try row.decode("repo")
        title = try row.decode("title")
        description = try row.decode("description")
        labels = try row.decode("labels", as: PostgresTextArray.self).values
        state = TaskState(
            stage: try row.decode("stage"), status: try row.decode("status"), track: try row.decode("track"),
            auto: try row.decode("auto"))
        visit = try row.decode("visit")
        prNumber = try row.decode("pr_number")
        headSHA = try row.decode("head_sha")
        mergeSHA = try row.decode("merge_sha")
        headCIState = try row.decode("head_ci_state")
        mergeCIState = try row.decode("merge_ci_state")
        createdAt = try row.decode("created_at")
        updatedAt = try row.decode("updated_at")
    }
}

extension TaskRecord {
    /// The stage visit a job enqueued now would be about.
    public var currentVisit: StageVisit { StageVisit(stage: state.stage, visit: visit) }
}

/// One entry of a task's history.
public struct TaskHistoryEntry: Sendable, Encodable {
    public let event: String
    public let fromStage: String
    public let toStage: String
    public let fromStatus: String
    public let toStatus: String
    public let reason: String?
    public let actor: String
    public let at: Date
}

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
        planeUpdatedAt: Date? = nil
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
            let task = try TaskRecord(row: row)
            let created = try row.decode("created", as: Bool.self)
            // A new task's first stage starts in the same transaction: created ⇔ its job exists.
            if created { try await enqueueStage(task.currentVisit, workItem: workItem, on: connection) }
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
        // Lock order everywhere: the task row, then job rows (cancels do the same).
        guard
            let row = try await connection.query(
                "SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1 FOR UPDATE", [workItem]
            ).first
        else { return nil }
        if let fence { try await JobStore.completeFenced(fence, on: connection) }
        let task = try TaskRecord(row: row)
        let transition = try TaskLifecycle.decide(
            event, from: task.state, visit: task.visit, about: about, policy: policy)
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
                try await Self.cancelJobs(workItem: workItem, reason: reason ?? "task cancelled", on: connection)
            case .recordLesson(let type, let rootCause):
                var lesson = Lesson(
                    type: type, rootCause: String((rootCause ?? reason ?? transition.eventName).prefix(4000)))
                lesson.source = "auto"
                lesson.workItem = workItem
                lesson.stage = task.state.stage.rawValue
                lesson.repo = task.repo
                _ = try await LessonStore.record(lesson, on: connection)
            }
        }
        try await alongside?(connection)
        return try TaskRecord(row: updated)
    }

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

    /// The leader's backstop for the invariant "an active task has a live stage job": a stage job
    /// that ended without its task moving on (rescued into `failed` after its replicas died
    /// `max_attempts` times, cancelled by an operator through `/jobs`, a job row lost) leaves the
    /// task `held` with the last job's error, a lesson and a notification, so `/retry` can start
    /// it again. Each task is re-checked under its row lock: a transition commits its next job in
    /// the same transaction, so a task seen without one really has none. Returns the work items held.
    public func holdStranded(limit: Int = 100) async throws -> [String] {
        let candidates = try await pool.query(
            """
            SELECT work_item FROM tasks t
            WHERE status = 'active' AND stage <> 'done'
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = $1 AND j.payload->>'work_item' = t.work_item
                              AND j.status IN ('queued', 'running'))
            ORDER BY updated_at LIMIT $2
            """,
            [Self.stageJobKind, limit]
        ).rows.map { try $0.decode("work_item", as: String.self) }
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
                    SELECT status, last_error FROM jobs WHERE kind = $1 AND payload->>'work_item' = $2 ORDER BY id DESC LIMIT 50
                    """,
                    [Self.stageJobKind, workItem]
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
    static func cancelJobs(workItem: String, reason: String, on connection: Connection) async throws {
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
    }

    /// STOP/cancel figures for `/queue`: cancelled tasks, cancelled stage jobs, merges a cancel is
    /// waiting for (deferred), recent cancellations.
    public func stopSummary(recent limit: Int) async throws -> StopSummary {
        let counts = try await pool.query(
            """
            SELECT (SELECT count(*) FROM tasks WHERE status = 'cancelled') AS tasks,
                   (SELECT count(*) FROM jobs WHERE status = 'cancelled' AND kind = $1) AS jobs,
                   (SELECT count(*) FROM jobs j JOIN tasks t ON t.work_item = j.payload->>'work_item'
                    WHERE j.status = 'running' AND j.kind = $1 AND j.payload->>'stage' = 'merge' AND t.status = 'cancelled') AS deferred
            """,
            [Self.stageJobKind]
        ).first!
        let recent = try await pool.query(
            """
            SELECT t.work_item, e.actor, e.reason, e.at FROM task_events e JOIN tasks t ON t.id = e.task_id
            WHERE e.event = 'cancel' ORDER BY e.id DESC LIMIT $1
            """,
            [limit]
        ).rows.map {
            StopSummary.Cancellation(
                workItem: try $0.decode("work_item"), actor: try $0.decode("actor"), reason: try $0.decode("reason"),
                at: try $0.decode("at"))
        }
        return StopSummary(
            tasks: try counts.decode("tasks"), jobs: try counts.decode("jobs"), deferred: try counts.decode("deferred"),
            recent: recent)
    }

    /// Bug fast-track figures for `/queue`: bug-track tasks by status, how many skipped
    /// architecture (passed analysis on the bug track), and escalations to the full track.
    public func bugTrackSummary() async throws -> BugTrackSummary {
        var byStatus: [String: Int] = [:]
        for row in try await pool.query("SELECT status, count(*) AS n FROM tasks WHERE track = 'bug' GROUP BY status")
            .rows
        {
            byStatus[try row.decode("status")] = try row.decode("n")
        }
        let row = try await pool.query(
            """
            SELECT (SELECT count(DISTINCT e.task_id) FROM task_events e JOIN tasks t ON t.id = e.task_id
                    WHERE t.track = 'bug' AND e.from_stage = 'analysis' AND e.to_stage = 'development') AS skipped,
                   (SELECT count(*) FROM task_events WHERE event = 'escalate') AS escalated
            """
        ).first!
        return BugTrackSummary(
            byStatus: byStatus, architectureSkipped: try row.decode("skipped"), escalated: try row.decode("escalated"))
    }

    /// The task of a Plane issue uuid.
    public func task(planeIssueID: String) async throws -> TaskRecord? {
        try await pool.query("SELECT \(TaskRecord.columns) FROM tasks WHERE plane_issue_id = $1", [planeIssueID]).first
            .map(TaskRecord.init(row:))
    }

    /// What became of a Gitea `pull_request` or `push` delivery for a task.
    public enum DeliveryEffect: Sendable, Equatable {
        case applied
        case ignored(String)
    }

    /// Records a Gitea `pull_request` event on the task it is bound to: only the pull request the
    /// orchestrator opened or found (its number), in the task's own repository, from a head in
    /// that same repository (never a fork), and only when the delivery is newer (Gitea's
    /// `updated_at`) than the last one applied, so a replayed or late delivery cannot rewind the
    /// head. Anything else is ignored with the reason.
    public func recordPullRequestEvent(
        workItem: String, repo: String, headRepo: String?, number: Int, headSHA: String, mergeSHA: String?,
        updatedAt: Date?
    ) async throws -> DeliveryEffect {
        try await pool.withTransaction { connection in
            guard
                let row = try await connection.query(
                    "SELECT repo, pr_number, pr_updated_at, head_sha FROM tasks WHERE work_item = $1 FOR UPDATE",
                    [workItem]
                ).first,
                try row.decode("repo", as: String?.self) == repo
            else { return .ignored("no task \(workItem) in \(repo)") }
            guard headRepo == repo else {
                return .ignored("PR #\(number) comes from \(headRepo ?? "an unknown repository"), not \(repo) (a fork)")
            }
            let own: Int? = try row.decode("pr_number")
            guard own == number else {
                return .ignored(
                    "PR #\(number) is not \(workItem)'s pull request (\(own.map { "#\($0)" } ?? "none opened yet"))")
            }
            guard let updatedAt else { return .ignored("PR #\(number) event without updated_at: its order is unknown") }
            // Gitea stamps whole seconds: a delivery of the same second may add facts about the
            // same head (a merge), but never move the head.
            let knownHead: String? = try row.decode("head_sha")
            if let last: Date = try row.decode("pr_updated_at"),
                updatedAt < last || (updatedAt == last && headSHA != knownHead)
            {
                return .ignored(
                    "PR #\(number) event of \(updatedAt) is not newer than the last applied (\(last)): stale or replayed"
                )
            }
            try await connection.query(
                """
                UPDATE tasks SET head_sha = $2, merge_sha = coalesce($3, merge_sha), pr_updated_at = $4,
                       head_ci_state = combined_ci_state(repo, $2), merge_ci_state = combined_ci_state(repo, coalesce($3, merge_sha)),
                       updated_at = now()
                WHERE work_item = $1
                """,
                [workItem, headSHA, mergeSHA, updatedAt])
            return .applied
        }
    }

    /// Records the pull request the orchestrator opened or found for the task, with the head it
    /// just pushed, on the caller's connection (inside the stage outcome's transaction).
    public static func recordOwnPullRequest(
        workItem: String, number: Int, headSHA: String, on connection: Connection
    ) async throws {
        try await connection.query(
            """
            UPDATE tasks SET pr_number = $2, head_sha = $3, head_ci_state = combined_ci_state(repo, $3), updated_at = now()
            WHERE work_item = $1
            """,
            [workItem, number, headSHA])
    }

    /// Records a Gitea `push` to a task's branch: applied only when it continues the head the task
    /// knows (`before` is that head, or none is known yet), so a replayed or late delivery cannot
    /// move the head backwards. The orchestrator records its own pushes itself.
    public func recordPushEvent(
        workItem: String, repo: String, before: String?, after: String
    ) async throws -> DeliveryEffect {
        let result = try await pool.query(
            """
            UPDATE tasks SET head_sha = $4, head_ci_state = combined_ci_state(repo, $4), pushed_at = now(), updated_at = now()
            WHERE work_item = $1 AND repo = $2 AND (head_sha IS NULL OR head_sha = $3) AND head_sha IS DISTINCT FROM $4
            RETURNING id
            """,
            [workItem, repo, before, after])
        if result.affectedRows == 1 { return .applied }
        guard let task = try await task(workItem: workItem), task.repo == repo else {
            return .ignored("no task \(workItem) in \(repo)")
        }
        if task.headSHA == after { return .ignored("\(workItem) is already at \(after.prefix(12))") }
        return .ignored(
            "push \((before ?? "?").prefix(12))→\(after.prefix(12)) does not continue the known head "
                + "\((task.headSHA ?? "?").prefix(12)): stale or replayed")
    }

    /// Records the task branch's new head after the orchestrator pushed it, on the caller's
    /// connection (statuses already known for it count at once).
    public static func recordPush(
        workItem: String, repo: String, headSHA: String, on connection: Connection
    ) async throws {
        try await connection.query(
            """
            UPDATE tasks SET head_sha = $3, head_ci_state = combined_ci_state(repo, $3), pushed_at = now(), updated_at = now()
            WHERE work_item = $1 AND (repo = $2 OR repo IS NULL)
            """,
            [workItem, repo, headSHA])
    }

    /// Records the merge commit of the task's branch, on the caller's connection.
    public static func recordMerge(workItem: String, sha: String, on connection: Connection) async throws {
        try await connection.query(
            """
            UPDATE tasks SET merge_sha = $2, merge_ci_state = combined_ci_state(repo, $2), updated_at = now() WHERE work_item = $1
            """,
            [workItem, sha])
    }

    /// Wakes a task's merge job waiting for CI (postponed): it runs now and looks at the CI again.
    public func wakeMerge(workItem: String) async throws {
        try await pool.query(
            """
            WITH woken AS (
                UPDATE jobs SET run_at = now()
                WHERE status = 'queued' AND kind = $2 AND payload->>'work_item' = $1 AND payload->>'stage' = 'merge' AND run_at > now()
                RETURNING queue
            )
            SELECT pg_notify('orch_jobs', queue) FROM woken
            """,
            [workItem, Self.stageJobKind])
    }

    /// A task whose CI facts a commit status changed.
    public struct CIUpdate: Sendable, Equatable {
        public let workItem: String
        /// `head` or `merge`: which of the task's commits the status is for.
        public let commit: String
        /// The commit's combined state after this status.
        public let combinedState: CIState
    }

    /// Stores a Gitea commit status (a later status id for the same context wins; an older one
    /// arriving late changes nothing) and refreshes the combined CI state of every task whose PR
    /// head or merge commit is that sha, in one transaction. Returns the tasks it touched.
    public func recordCommitStatus(
        repo: String, sha: String, context: String, state: CIState, statusID: Int64, targetURL: String?,
        description: String?
    ) async throws -> [CIUpdate] {
        try await pool.withTransaction { connection in
            try await connection.query(
                """
                INSERT INTO commit_statuses (repo, sha, context, state, status_id, target_url, description)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (repo, sha, context) DO UPDATE
                SET state = excluded.state, status_id = excluded.status_id, target_url = excluded.target_url,
                    description = excluded.description, received_at = now()
                WHERE excluded.status_id >= commit_statuses.status_id
                """,
                [repo, sha, context, state, statusID, targetURL, description])
            return try await connection.query(
                """
                UPDATE tasks SET
                    head_ci_state = CASE WHEN head_sha = $2 THEN combined_ci_state(repo, $2) ELSE head_ci_state END,
                    merge_ci_state = CASE WHEN merge_sha = $2 THEN combined_ci_state(repo, $2) ELSE merge_ci_state END,
                    updated_at = now()
                WHERE repo = $1 AND (head_sha = $2 OR merge_sha = $2)
                RETURNING work_item, CASE WHEN merge_sha = $2 THEN 'merge' ELSE 'head' END AS commit,
                          combined_ci_state(repo, $2) AS combined
                """,
                [repo, sha]
            ).rows.map {
                CIUpdate(
                    workItem: try $0.decode("work_item"), commit: try $0.decode("commit"),
                    combinedState: try $0.decode("combined"))
            }
        }
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
