import Foundation

/// Turns new `task_events` into notification jobs, one per event and channel, exactly once: the
/// cursor row is locked while the jobs are enqueued, and each job's dedupe key names the event.
/// Each channel's jobs wait in the channel's own queue (`queue(channel:)`).
public struct NotificationStore: Sendable {
    let pool: ConnectionPool

    /// Creates the store.
    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// The queue of each channel's jobs. A channel has a queue of its own so that only replicas
    /// with its settings claim them: in a shared queue, a replica without them would take the
    /// jobs and fail them, though another replica could deliver them.
    public static func queue(channel: String) -> String { "notify.\(channel)" }

    /// The job that notifies `channel` of `event`: `telegram` (``TelegramNotificationJob``) or
    /// `plane_comment` (``PlaneCommentNotificationJob``); `nil` for a channel there is no job for.
    public static func job(channel: String, event: TaskEventNotification) throws -> NewJob? {
        switch channel {
        case "telegram": try TelegramNotificationJob.job(.content(event))
        case "plane_comment": try PlaneCommentNotificationJob.job(event)
        default: nil
        }
    }

    /// Moves queued jobs of `kinds` from any other queue to `queue`, waking its workers; returns
    /// how many moved. Notification jobs queued by an earlier version wait in `default`, where a
    /// replica without the channel would claim them: each replica moves them at start.
    @discardableResult
    public func moveQueued(kinds: [String], to queue: String) async throws -> Int {
        guard !kinds.isEmpty else { return 0 }
        return try await pool.query(
            """
            WITH moved AS (
                UPDATE jobs SET queue = $2
                WHERE status = 'queued' AND kind = ANY($1::text[]) AND queue <> $2
                RETURNING id
            ), notified AS (
                SELECT pg_notify('orch_jobs', $2) WHERE EXISTS (SELECT 1 FROM moved)
            )
            SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM notified) AS notified
            """,
            [PostgresArray(kinds), queue]
        ).first!.decode("moved", as: Int.self)
    }

    /// Enqueues a job per channel for each task event after the cursor (at most `limit`), and
    /// moves the cursor. The first call starts at the newest event: history is not replayed.
    /// Returns the number of events handled.
    @discardableResult
    public func enqueueNew(channels: [String], limit: Int = 200) async throws -> Int {
        guard !channels.isEmpty else { return 0 }
        return try await pool.withTransaction { connection in
            // Waits for transactions still writing events (they hold this lock shared): ids are
            // taken before commit, so reading now could pass over one that commits later.
            try await connection.query("SELECT pg_advisory_xact_lock($1, 0)", [AdvisoryLockKey.Namespace.taskEvents])
            try await connection.query(
                """
                INSERT INTO notification_cursor (name, last_event_id)
                SELECT 'task_events', coalesce(max(id), 0) FROM task_events
                ON CONFLICT (name) DO NOTHING
                """)
            let cursor: Int64 = try await connection.query(
                "SELECT last_event_id FROM notification_cursor WHERE name = 'task_events' FOR UPDATE"
            ).first!.decode("last_event_id")
            let events = try await connection.query(
                """
                SELECT e.id, e.event, t.work_item, t.title, t.repo, e.from_stage, e.to_stage, e.from_status, e.to_status,
                       e.reason, e.actor, t.plane_issue_id, t.plane_project_id
                FROM task_events e JOIN tasks t ON t.id = e.task_id
                WHERE e.id > $1 ORDER BY e.id LIMIT $2
                """,
                [cursor, limit]
            ).rows
            guard let last = try events.last?.decode("id", as: Int64.self) else { return 0 }
            var jobs: [NewJob] = []
            for row in events {
                let event = TaskEventNotification(
                    event_id: try row.decode("id"), event: try row.decode("event"),
                    work_item: try row.decode("work_item"),
                    title: try row.decode("title"), repo: try row.decode("repo"),
                    from_stage: try row.decode("from_stage"),
                    to_stage: try row.decode("to_stage"), from_status: try row.decode("from_status"),
                    to_status: try row.decode("to_status"), reason: try row.decode("reason"),
                    actor: try row.decode("actor"),
                    plane_issue_id: try row.decode("plane_issue_id"),
                    plane_project_id: try row.decode("plane_project_id"))
                for channel in channels {
                    if let job = try Self.job(channel: channel, event: event) { jobs.append(job) }
                }
            }
            try await JobStore(pool: pool).enqueue(jobs, on: connection)
            try await connection.query(
                "UPDATE notification_cursor SET last_event_id = $1, updated_at = now() WHERE name = 'task_events'",
                [last])
            return events.count
        }
    }
}
