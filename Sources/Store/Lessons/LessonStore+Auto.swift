import Foundation

extension LessonStore {
    /// ``recordAuto(_:task:on:settings:)`` in its own transaction: for a finding with no transition to commit
    /// with (a stalled run, retried rather than judged).
    public func recordAuto(_ found: AutoLesson, task: TaskRecord) async throws -> Lesson? {
        try await pool.withTransaction { try await Self.recordAuto(found, task: task, on: $0) }
    }

    /// Records a detector's lesson about `task` on the caller's connection (inside the
    /// transition's transaction, so the lesson commits with what it is about), unless the journal
    /// is off or the same finding — type, work item, stage and root cause — was recorded within
    /// `window` (``LessonJournal/Settings/dedupWindow`` by default). Returns the lesson, or nil
    /// when nothing was recorded.
    ///
    /// The lesson names the agent role, the run and, in `detail`, the run id and its log path, so
    /// an analyst can open the log. Without an explicit run, the task's latest run in this stage
    /// is taken (a gate failure or an exhausted retry is about the run that just ended).
    public static func recordAuto(
        _ found: AutoLesson, task: TaskRecord, on connection: Connection,
        settings: LessonJournal.Settings = LessonJournal.shared.settings
    ) async throws -> Lesson? {
        guard settings.enabled else { return nil }
        let stage = task.state.stage.rawValue
        let rootCause = SecretRedactor.shared.redact(found.rootCause, limit: SecretRedactor.maxTextLength)
        let key = "\(found.type)\u{1F}\(task.workItem)\u{1F}\(stage)"
        try await connection.query(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", [AdvisoryLockKey.Namespace.lessons, key])
        let evidence = try JSONB(encoding: found.evidence)
        // The dedup check and the insert are one statement, behind the lock taken above.
        return try await connection.query(
            """
            WITH run AS (
                SELECT id, role, log_path FROM agent_runs
                WHERE ($7::bigint IS NOT NULL AND id = $7) OR ($7::bigint IS NULL AND task_id = $2 AND stage = $4)
                ORDER BY id DESC LIMIT 1
            )
            INSERT INTO lessons (type, source, status, work_item, task_id, stage, agent, repo, root_cause, agent_run_id, detail)
            SELECT $1, 'auto', 'open', $3, $2, $4, coalesce($6, (SELECT role FROM run)), $5, $8,
                   (SELECT id FROM run),
                   jsonb_strip_nulls(jsonb_build_object('run_id', (SELECT id FROM run), 'log_path', (SELECT log_path FROM run)))
                       || $9::jsonb
            WHERE NOT EXISTS (
                SELECT 1 FROM lessons
                WHERE source = 'auto' AND type = $1 AND work_item = $3 AND stage = $4 AND root_cause = $8
                  AND created_at > now() - $10 * interval '1 second'
            )
            RETURNING \(Lesson.columns)
            """,
            [
                found.type, task.id, task.workItem, stage, task.repo, found.agent, found.runID, rootCause,
                JSONB(text: SecretRedactor.shared.redact(evidence.text)), settings.dedupWindow,
            ]
        ).first.map(Lesson.init(row:))
    }
}
