import Foundation

/// The `replicas` table: registration, startup recovery, leadership mirror and liveness views.
public struct ReplicaStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Registers this process (a fresh `id` per start).
    public func register(id: String, name: String, host: String, pid: Int, role: String) async throws {
        try await pool.query(
            """
            INSERT INTO replicas (id, name, host, pid, role) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL
            """,
            [id, name, host, pid, role])
    }

    /// Startup recovery: finds earlier incarnations of this replica — same name and host, not this
    /// process, and provably dead (`isDead(pid)` on this host, or no heartbeat for `staleAfter`) —
    /// marks them stopped and puts their running jobs straight back in the queue. Jobs still
    /// leased to an incarnation already marked stopped (by the leader's sweep, whose rescue has not
    /// run yet or is switched off) go back too: a stopped replica's jobs are abandoned by
    /// definition, and the leader's rescue would take them as well. Jobs of other live replicas
    /// are never touched. Returns the ids of requeued jobs (or failed, when out of attempts).
    public func recoverPreviousIncarnations(
        id: String, name: String, host: String, staleAfter: Duration, isDead: (Int) -> Bool
    ) async throws -> [Int64] {
        let candidates = try await pool.query(
            """
            SELECT id, pid, heartbeat_at < now() - make_interval(secs => $4::float8) AS stale FROM replicas
            WHERE name = $1 AND host = $2 AND id <> $3 AND stopped_at IS NULL
            """,
            [name, host, id, staleAfter])
        var dead: [String] = []
        for row in candidates.rows {
            let pid: Int = try row.decode("pid")
            if try row.decode("stale", as: Bool.self) || isDead(pid) { dead.append(try row.decode("id")) }
        }
        return try await pool.withTransaction { connection in
            try await connection.query(
                "UPDATE replicas SET stopped_at = now(), leader_since = NULL WHERE id = ANY($1::text[]) AND stopped_at IS NULL",
                [PostgresArray(dead)])
            let result = try await connection.query(
                """
                WITH requeued AS (
                    UPDATE jobs
                    SET status = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
                        finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
                        last_error = 'recovered at restart from previous incarnation ' || locked_by,
                        locked_by = CASE WHEN attempt >= max_attempts THEN locked_by END,
                        lease_expires_at = NULL, run_at = now()
                    WHERE status = 'running' AND locked_by IN (
                        SELECT id FROM replicas WHERE name = $1 AND host = $2 AND id <> $3 AND stopped_at IS NOT NULL)
                    RETURNING id, queue, status
                ), notified AS (
                    SELECT pg_notify('orch_jobs', q.queue) FROM (SELECT DISTINCT queue FROM requeued WHERE status = 'queued') q
                )
                SELECT id, (SELECT count(*) FROM notified) AS notified FROM requeued
                """,
                [name, host, id])
            return try result.rows.map { try $0.decode("id") }
        }
    }

    /// Marks this replica stopped (clean shutdown) so nobody waits for its heartbeat to go stale.
    public func markStopped(id: String) async throws {
        try await pool.query("UPDATE replicas SET stopped_at = now(), leader_since = NULL WHERE id = $1", [id])
    }

    /// Mirrors leadership for observability: `id` becomes the only row with `leader_since` set.
    public func recordLeader(id: String) async throws {
        try await pool.query(
            """
            UPDATE replicas SET leader_since = CASE WHEN id = $1 THEN coalesce(leader_since, now()) END
            WHERE id = $1 OR leader_since IS NOT NULL
            """,
            [id])
    }

    /// Clears this replica's leader mark after it stepped down.
    public func clearLeader(id: String) async throws {
        try await pool.query("UPDATE replicas SET leader_since = NULL WHERE id = $1", [id])
    }

    /// Leader duty: marks replicas without a heartbeat for `staleAfter` as stopped and deletes rows
    /// stopped longer than `retention`. Returns (marked, deleted).
    public func sweep(staleAfter: Duration, retention: Duration) async throws -> (marked: Int, deleted: Int) {
        let marked = try await pool.query(
            """
            UPDATE replicas SET stopped_at = now(), leader_since = NULL
            WHERE stopped_at IS NULL AND heartbeat_at < now() - make_interval(secs => $1::float8)
            """,
            [staleAfter]
        ).affectedRows
        let deleted = try await pool.query(
            """
            DELETE FROM replicas r WHERE stopped_at < now() - make_interval(secs => $1::float8)
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.status = 'running' AND j.locked_by = r.id)
            """,
            [retention]
        ).affectedRows
        return (marked, deleted)
    }

    /// Replicas not stopped, with their heartbeat age by the database clock.
    public func live() async throws -> [Replica] {
        try await pool.query(
            """
            SELECT id, name, host, pid, role, started_at, heartbeat_at, stopped_at, leader_since,
                   extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age
            FROM replicas
            WHERE stopped_at IS NULL ORDER BY started_at
            """
        ).rows.map(Replica.init(row:))
    }
}
