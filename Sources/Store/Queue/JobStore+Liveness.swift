import Foundation

/// Heartbeats extending leases, the rescue of abandoned jobs, and pruning.
extension JobStore {
    /// What one heartbeat learned.
    public struct HeartbeatResult: Sendable, Equatable {
        /// The replica's row exists.
        public var replicaKnown: Bool
        /// The row is marked stopped (the leader gave up on it): the replica must stop claiming,
        /// abandon its jobs and register again under a new id.
        public var replicaStopped: Bool
        /// Held jobs whose cancellation was requested.
        public var cancelRequested: [Int64]
        /// Held jobs that are no longer this replica's (rescued, cancelled, finished or deleted):
        /// their handlers must stop, and their outcomes would be refused anyway.
        public var lost: [Int64]
    }

    private static let heartbeatSQL = """
        WITH replica AS (
            UPDATE replicas SET heartbeat_at = now() WHERE id = $1 RETURNING id, stopped_at
        ), held AS (
            SELECT * FROM unnest($3::bigint[], $4::int[]) AS h(id, attempt) WHERE NOT $5
            UNION ALL
            SELECT id, attempt FROM jobs WHERE $5 AND status = 'running' AND locked_by = $1
        ), extended AS (
            UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => $2::float8)
            FROM held h
            WHERE j.id = h.id AND j.attempt = h.attempt AND j.status = 'running' AND j.locked_by = $1
              AND EXISTS (SELECT 1 FROM replica WHERE stopped_at IS NULL)
            RETURNING j.id, j.cancel_requested
        )
        SELECT (SELECT count(*) FROM replica) AS known,
               (SELECT count(*) FROM replica WHERE stopped_at IS NOT NULL) AS stopped,
               (SELECT coalesce(array_agg(id), '{}') FROM extended WHERE cancel_requested) AS cancel_requested,
               (SELECT coalesce(array_agg(h.id), '{}') FROM held h
                WHERE h.id NOT IN (SELECT id FROM extended)
                  -- Finished by this replica itself (completed, failed or put back as this
                  -- attempt) just before the beat: its handler has ended, nothing is lost.
                  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = h.id AND j.attempt = h.attempt
                                  AND j.locked_by = $1 AND j.status <> 'running')) AS lost
        """

    /// Stamps `replicaID`'s heartbeat and extends the leases of the jobs it still holds (`holding`,
    /// fenced by attempt), in one statement on the replica's own session. Reports whether the
    /// replica was marked stopped, which held jobs were asked to cancel, and which are lost.
    public static func heartbeat(
        replicaID: String, lease: Duration, holding: [JobLease], on session: DedicatedSession
    ) async throws -> HeartbeatResult {
        var result = try decodeHeartbeat(
            try await session.query(heartbeatSQL, heartbeatParameters(replicaID, lease, holding)))
        if !result.lost.isEmpty {
            result.lost = try decodeLost(try await session.query(lostSQL, lostParameters(replicaID, result, holding)))
        }
        return result
    }

    /// The heartbeat's `lost` again, in a statement of its own. A job whose handler was committing
    /// its own outcome when the beat ran held the row lock: the beat's UPDATE waited for that
    /// commit and then skipped the finished row, but the rest of the statement still read the
    /// snapshot from before it (READ COMMITTED) and called the job lost. A new statement sees the
    /// commit: a job this replica finished itself is not lost.
    static let lostSQL = """
        SELECT coalesce(array_agg(id), '{}') AS lost FROM unnest($2::bigint[], $3::int[]) AS l(id, attempt)
        WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.id AND j.attempt = l.attempt
                          AND j.locked_by = $1 AND j.status <> 'running')
        """

    private static func lostParameters(
        _ replicaID: String, _ result: HeartbeatResult, _ holding: [JobLease]
    ) -> [any PostgresEncodable] {
        let lost = holding.filter { result.lost.contains($0.jobID) }
        return [replicaID, PostgresArray(lost.map(\.jobID)), PostgresArray(lost.map(\.attempt))]
    }

    private static func decodeLost(_ result: QueryResult) throws -> [Int64] {
        try result.first!.decode("lost", as: PostgresIntegerArray.self).values
    }

    /// The same heartbeat through the pool; with `holding` nil it extends every job running under
    /// `replicaID` (tools and tests that hold no worker).
    public func heartbeat(
        replicaID: String, lease: Duration, holding: [JobLease]? = nil
    ) async throws -> HeartbeatResult {
        var result = try Self.decodeHeartbeat(
            try await pool.query(Self.heartbeatSQL, Self.heartbeatParameters(replicaID, lease, holding)))
        if let holding, !result.lost.isEmpty {
            result.lost = try Self.decodeLost(
                try await pool.query(Self.lostSQL, Self.lostParameters(replicaID, result, holding)))
        }
        return result
    }

    private static func heartbeatParameters(
        _ replicaID: String, _ lease: Duration, _ holding: [JobLease]?
    ) -> [any PostgresEncodable] {
        [
            replicaID, lease, PostgresArray((holding ?? []).map(\.jobID)),
            PostgresArray((holding ?? []).map(\.attempt)), holding == nil,
        ]
    }

    private static func decodeHeartbeat(_ result: QueryResult) throws -> HeartbeatResult {
        let row = result.first!
        return HeartbeatResult(
            replicaKnown: try row.decode("known", as: Int.self) > 0,
            replicaStopped: try row.decode("stopped", as: Int.self) > 0,
            cancelRequested: try row.decode("cancel_requested", as: PostgresIntegerArray.self).values,
            lost: try row.decode("lost", as: PostgresIntegerArray.self).values)
    }

    /// Leader duty: puts back every running job whose lease expired or whose replica stopped
    /// heartbeating for `staleAfter` (by the database clock); a job out of attempts becomes failed.
    /// Returns the ids rescued.
    public func rescueAbandoned(staleAfter: Duration) async throws -> [Int64] {
        let result = try await pool.query(
            """
            WITH stale AS (
                SELECT id FROM replicas WHERE heartbeat_at < now() - make_interval(secs => $1::float8) OR stopped_at IS NOT NULL
            ), abandoned AS (
                SELECT id FROM jobs
                WHERE status = 'running'
                  AND (lease_expires_at < now()
                       OR locked_by IN (SELECT id FROM stale)
                       OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = jobs.locked_by))
                FOR UPDATE SKIP LOCKED
            ), rescued AS (
                UPDATE jobs j
                SET status = CASE WHEN j.attempt >= j.max_attempts THEN 'failed' ELSE 'queued' END,
                    finished_at = CASE WHEN j.attempt >= j.max_attempts THEN now() END,
                    last_error = 'abandoned by replica ' || coalesce(j.locked_by, '?') || ' (lease expired or replica stale)',
                    locked_by = CASE WHEN j.attempt >= j.max_attempts THEN j.locked_by END,
                    lease_expires_at = NULL, run_at = now()
                FROM abandoned a WHERE j.id = a.id
                RETURNING j.id, j.queue, j.status
            ), notified AS (
                SELECT pg_notify('orch_jobs', q.queue) FROM (SELECT DISTINCT queue FROM rescued WHERE status = 'queued') q
            )
            SELECT id, (SELECT count(*) FROM notified) AS notified FROM rescued
            """,
            [staleAfter])
        return try result.rows.map { try $0.decode("id") }
    }

    /// Leader duty: deletes finished jobs older than `retention`, `batchSize` rows per statement so
    /// no long lock is held. Returns how many rows were deleted.
    public func prune(retention: Duration, batchSize: Int = 1000) async throws -> Int {
        try await pool.deleteInBatches(
            """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs
                WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < now() - make_interval(secs => $1::float8)
                LIMIT $2 FOR UPDATE SKIP LOCKED)
            """,
            retention: retention, batchSize: batchSize)
    }
}
