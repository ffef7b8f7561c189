import Foundation

/// Task figures for the `/queue` report.
extension TaskStore {
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
}
