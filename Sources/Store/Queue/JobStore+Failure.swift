import Foundation

/// Failed, handed back and cancelled jobs.
extension JobStore {
    /// Records a failed attempt: back to the queue after `retryDelay` while attempts remain (and
    /// `retryable`), else `failed`. `error` is kept in `last_error` either way. Fenced.
    ///
    /// `whenFinal` runs first, in the same transaction, when this attempt is the last
    /// (`finalAttempt`: not retryable, or the attempts are used up) — what the job's failure means
    /// for the rest of the system (a stage job's task is held) commits with it or not at all. It
    /// runs before the job row is locked, so it can take its own locks in the order used
    /// elsewhere (a task row before its job rows); a fence found broken rolls it back.
    public func fail(
        _ lease: JobLease, error: String, retryDelay: Duration, retryable: Bool = true, finalAttempt: Bool = false,
        whenFinal: ((Connection) async throws -> Void)? = nil
    ) async throws -> FailOutcome {
        guard finalAttempt, let whenFinal else {
            return try await pool.withConnection { connection in
                try await Self.fail(lease, error: error, retryDelay: retryDelay, retryable: retryable, on: connection)
            }
        }
        struct NotOwner: Error {}
        do {
            return try await pool.withTransaction { connection in
                try await whenFinal(connection)
                let outcome = try await Self.fail(
                    lease, error: error, retryDelay: retryDelay, retryable: false, on: connection)
                guard case .failed = outcome else { throw NotOwner() }
                return outcome
            }
        } catch is NotOwner {
            return .notOwner
        }
    }

    private static func fail(
        _ lease: JobLease, error: String, retryDelay: Duration, retryable: Bool, on connection: Connection
    ) async throws -> FailOutcome {
        let result = try await connection.query(
            """
            WITH target AS (
                SELECT id, (NOT $5::bool OR attempt >= max_attempts) AS final FROM jobs
                WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempt = $3
                FOR UPDATE
            )
            UPDATE jobs j
            SET status = CASE WHEN t.final THEN 'failed' ELSE 'queued' END,
                run_at = CASE WHEN t.final THEN j.run_at ELSE now() + make_interval(secs => $4::float8) END,
                finished_at = CASE WHEN t.final THEN now() END,
                lease_expires_at = NULL,
                last_error = $6
            FROM target t
            WHERE j.id = t.id
            RETURNING j.status, j.run_at
            """,
            [lease.jobID, lease.replicaID, lease.attempt, retryDelay, retryable, String(error.prefix(8000))])
        guard let row = result.first else { return .notOwner }
        let status: JobStatus = try row.decode("status")
        return status == .failed ? .failed : .retrying(runAt: try row.decode("run_at"))
    }

    /// Gives a running job back to the queue at once without spending an attempt (graceful shutdown).
    public func handBack(_ leases: [JobLease], reason: String) async throws -> Set<Int64> {
        guard !leases.isEmpty else { return [] }
        let result = try await pool.query(
            """
            WITH returned AS (
                UPDATE jobs j
                SET status = 'queued', attempt = j.attempt - 1, run_at = now(), lease_expires_at = NULL,
                    locked_by = NULL, last_error = $4
                FROM unnest($1::bigint[], $2::text[], $3::int[]) AS f(id, replica, attempt)
                WHERE j.id = f.id AND j.status = 'running' AND j.locked_by = f.replica AND j.attempt = f.attempt
                RETURNING j.id, j.queue
            ), notified AS (
                SELECT pg_notify('orch_jobs', q.queue) FROM (SELECT DISTINCT queue FROM returned) q
            )
            SELECT id, (SELECT count(*) FROM notified) AS notified FROM returned
            """,
            [
                PostgresArray(leases.map(\.jobID)), PostgresArray(leases.map(\.replicaID)),
                PostgresArray(leases.map(\.attempt)), reason,
            ])
        return Set(try result.rows.map { try $0.decode("id", as: Int64.self) })
    }

    /// Marks a running job cancelled after its owner stopped it. Fenced.
    public func markCancelled(_ lease: JobLease, reason: String) async throws -> Bool {
        let result = try await pool.query(
            """
            UPDATE jobs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL, last_error = $4
            WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempt = $3
            """,
            [lease.jobID, lease.replicaID, lease.attempt, reason])
        return result.affectedRows == 1
    }

    /// Cancels a job: a queued one in place; a running one is flagged and its owner notified on
    /// `orch_cancel` so it kills the work (the owner then records `cancelled`).
    public func cancel(jobID: Int64, reason: String = "cancelled by operator") async throws -> CancelOutcome {
        try await pool.withTransaction { connection in
            guard
                let row = try await connection.query("SELECT status FROM jobs WHERE id = $1 FOR UPDATE", [jobID]).first
            else {
                return .notFound
            }
            switch try row.decode("status", as: JobStatus.self) {
            case .queued:
                try await connection.query(
                    "UPDATE jobs SET status = 'cancelled', finished_at = now(), last_error = $2 WHERE id = $1",
                    [jobID, reason])
                return .cancelled
            case .running:
                try await connection.query("UPDATE jobs SET cancel_requested = true WHERE id = $1", [jobID])
                try await connection.query("SELECT pg_notify('orch_cancel', $1)", [String(jobID)])
                return .signalled
            case .completed, .failed, .cancelled:
                return .alreadyFinished
            }
        }
    }
}
