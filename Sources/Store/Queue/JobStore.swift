import Foundation

/// The job queue's SQL: enqueue, claim, fenced completion, retry, cancel, rescue and pruning.
public struct JobStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    // The hot statement, built once: each call would otherwise rebuild and rehash the text.
    private static let completeAndClaimSQL = """
        WITH done AS (
            UPDATE jobs j
            SET status = 'completed', finished_at = now(), lease_expires_at = NULL
            FROM unnest($1::bigint[], $2::int[]) AS f(id, attempt)
            WHERE j.id = f.id AND j.status = 'running' AND j.locked_by = $3 AND j.attempt = f.attempt
            RETURNING j.id
        ), candidates AS (
            SELECT id FROM jobs
            WHERE status = 'queued' AND queue = $4 AND run_at <= now()
              AND NOT EXISTS (SELECT 1 FROM replicas WHERE id = $3 AND stopped_at IS NOT NULL)
            ORDER BY priority, run_at, id
            LIMIT $5
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE jobs j
            SET status = 'running', attempt = j.attempt + 1, locked_by = $3, claimed_at = now(),
                lease_expires_at = now() + make_interval(secs => $6::float8), finished_at = NULL
            FROM candidates c
            WHERE j.id = c.id
            RETURNING \(Job.qualified(Job.claimedColumns, by: "j"))
        )
        SELECT d.completed_ids, \(Job.qualified(Job.claimedColumns, by: "claimed"))
        FROM (SELECT coalesce(array_agg(id), '{}') AS completed_ids FROM done) d
        LEFT JOIN claimed ON true
        """

    /// The outcome of a failure report.
    public enum FailOutcome: Sendable, Equatable {
        /// Back in the queue, due at `runAt`.
        case retrying(runAt: Date)
        /// Attempts exhausted (or not retryable): the job is `failed` with its error kept.
        case failed
        /// The job is no longer ours (rescued and re-claimed, cancelled, …); nothing was written.
        case notOwner
    }

    /// The outcome of a cancel request.
    public enum CancelOutcome: String, Sendable {
        /// It was queued and is now cancelled.
        case cancelled
        /// It is running; its owner was signalled to stop it.
        case signalled
        /// It had already finished.
        case alreadyFinished
        /// No such job.
        case notFound
    }

    // MARK: Enqueue

    /// Enqueues jobs on the caller's connection (so inside the caller's transaction, if any) and
    /// notifies listeners in the same transaction. Returns the new ids in order; `nil` where a
    /// `dedupeKey` already had a queued or running job.
    @discardableResult
    public func enqueue(_ jobs: [NewJob], on connection: Connection) async throws -> [Int64?] {
        guard !jobs.isEmpty else { return [] }
        let result = try await connection.query(
            """
            WITH input AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int[], $5::timestamptz[], $6::int[], $7::text[])
                    WITH ORDINALITY AS t(kind, queue, payload, priority, run_at, max_attempts, dedupe_key, ord)
            ), inserted AS (
                INSERT INTO jobs (kind, queue, payload, priority, run_at, max_attempts, dedupe_key)
                SELECT kind, queue, payload, priority, coalesce(run_at, now()), max_attempts, dedupe_key
                FROM input ORDER BY ord
                ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING
                RETURNING id, queue, run_at, dedupe_key
            ), notified AS (
                SELECT pg_notify('orch_jobs', q.queue) FROM (SELECT DISTINCT queue FROM inserted WHERE run_at <= now()) q
            )
            SELECT id, dedupe_key, (SELECT count(*) FROM notified) AS notified FROM inserted ORDER BY id
            """,
            [
                PostgresArray(jobs.map(\.kind)), PostgresArray(jobs.map(\.queue)), PostgresArray(jobs.map(\.payload)),
                PostgresArray(jobs.map(\.priority)), PostgresArray(jobs.map(\.runAt)),
                PostgresArray(jobs.map(\.maxAttempts)),
                PostgresArray(jobs.map(\.dedupeKey)),
            ])
        // Rows come back in insertion order (ids are increasing); keyed rows are matched by key.
        var byKey: [String: Int64] = [:]
        var unkeyed: [Int64] = []
        for row in result.rows {
            let id: Int64 = try row.decode("id")
            if let key: String = try row.decode("dedupe_key") { byKey[key] = id } else { unkeyed.append(id) }
        }
        var unkeyedIterator = unkeyed.makeIterator()
        return jobs.map { job in
            if let key = job.dedupeKey { return byKey.removeValue(forKey: key) }
            return unkeyedIterator.next()
        }
    }

    /// Enqueues one job in a transaction of its own.
    @discardableResult
    public func enqueue(_ job: NewJob) async throws -> Int64? {
        try await pool.withConnection { try await enqueue([job], on: $0).first ?? nil }
    }

    /// Enqueues jobs in a transaction of their own.
    @discardableResult
    public func enqueue(_ jobs: [NewJob]) async throws -> [Int64?] {
        try await pool.withConnection { try await enqueue(jobs, on: $0) }
    }

    // MARK: Claim and finish

    /// Claims up to `limit` due jobs from `queues` (taken in the order given) for `replicaID`,
    /// leasing them for `lease`.
    public func claim(queues: [String], replicaID: String, limit: Int, lease: Duration) async throws -> [Job] {
        var claimed: [Job] = []
        for queue in queues where claimed.count < limit {
            claimed += try await claim(queue: queue, replicaID: replicaID, limit: limit - claimed.count, lease: lease)
        }
        return claimed
    }

    /// Claims up to `limit` due jobs from one queue: one statement, served by `jobs_claim_idx`.
    public func claim(queue: String, replicaID: String, limit: Int, lease: Duration) async throws -> [Job] {
        guard limit > 0 else { return [] }
        return try await completeAndClaim(finished: [], replicaID: replicaID, queue: queue, limit: limit, lease: lease)
            .claimed
    }

    /// Completes `finished` (jobs `replicaID` ran to success; fenced by attempt) and claims up to
    /// `limit` due jobs from `queue`, in one statement and one commit: a busy worker pays one
    /// round trip per batch instead of two. Returns the ids actually completed and the new claims.
    public func completeAndClaim(
        finished: [JobLease], replicaID: String, queue: String, limit: Int, lease: Duration
    ) async throws -> (completed: Set<Int64>, claimed: [Job]) {
        let result = try await pool.query(
            Self.completeAndClaimSQL,
            [
                PostgresArray(finished.map(\.jobID)), PostgresArray(finished.map(\.attempt)), replicaID, queue,
                max(0, limit), lease,
            ])
        let rows = result.rows
        let completed = Set(try rows.first?.decode("completed_ids", as: PostgresIntegerArray.self).values ?? [])
        let claimed = try rows.filter { $0["id"] != nil }.map { try Job(claimedRow: $0, replicaID: replicaID) }
            .sorted { ($0.priority, $0.runAt, $0.id) < ($1.priority, $1.runAt, $1.id) }
        return (completed, claimed)
    }

    /// Marks claimed jobs completed in one statement. Fenced: only rows still running under the
    /// same replica and attempt change. Returns the ids that were completed.
    @discardableResult
    public func complete(_ leases: [JobLease]) async throws -> Set<Int64> {
        guard !leases.isEmpty else { return [] }
        let result = try await pool.query(
            """
            UPDATE jobs j
            SET status = 'completed', finished_at = now(), lease_expires_at = NULL
            FROM unnest($1::bigint[], $2::text[], $3::int[]) AS f(id, replica, attempt)
            WHERE j.id = f.id AND j.status = 'running' AND j.locked_by = f.replica AND j.attempt = f.attempt
            RETURNING j.id
            """,
            [
                PostgresArray(leases.map(\.jobID)), PostgresArray(leases.map(\.replicaID)),
                PostgresArray(leases.map(\.attempt)),
            ])
        return Set(try result.rows.map { try $0.decode("id", as: Int64.self) })
    }

    /// Completes a job inside the caller's transaction, as the first write of its outcome: throws
    /// `JobFenceLost` unless the job is still running under the lease's replica and attempt. The
    /// row stays locked until the caller commits, so no rescue can slip in between.
    static func completeFenced(_ lease: JobLease, on connection: Connection) async throws {
        let result = try await connection.query(
            """
            UPDATE jobs SET status = 'completed', finished_at = now(), lease_expires_at = NULL
            WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempt = $3
            """,
            [lease.jobID, lease.replicaID, lease.attempt])
        guard result.affectedRows == 1 else { throw JobFenceLost(lease: lease) }
    }

    /// Marks one claimed job completed; `false` when the lease was no longer ours.
    public func complete(_ lease: JobLease) async throws -> Bool {
        try await complete([lease]).contains(lease.jobID)
    }

    /// Puts a running job back in the queue until `until` without spending an attempt (its
    /// `max_attempts` grows by one, so the fencing token `attempt` still only ever increases).
    /// Fenced; returns false when the job is no longer ours. For an instant that came from the
    /// database (a circuit breaker's `open_until`); a delay from now uses `postpone(_:after:reason:)`.
    public func postpone(_ lease: JobLease, until: Date, reason: String) async throws -> Bool {
        try await postpone(lease, until: until, after: nil, reason: reason)
    }

    /// Puts a running job back in the queue for `delay`, measured from the database's `now()`:
    /// a replica whose clock is off can neither make the job wait too long nor spin it.
    /// Otherwise as `postpone(_:until:reason:)`.
    public func postpone(_ lease: JobLease, after delay: Duration, reason: String) async throws -> Bool {
        try await postpone(lease, until: nil, after: delay, reason: reason)
    }

    private func postpone(
        _ lease: JobLease, until: Date?, after delay: Duration?, reason: String
    ) async throws -> Bool {
        try await pool.query(
            """
            WITH postponed AS (
                UPDATE jobs SET status = 'queued', max_attempts = max_attempts + 1, last_error = $5,
                       lease_expires_at = NULL,
                       run_at = coalesce($4::timestamptz, now() + make_interval(secs => $6::float8))
                WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempt = $3
                RETURNING queue, run_at
            )
            SELECT count(*) AS n,
                   (SELECT count(*) FROM (SELECT pg_notify('orch_jobs', queue) FROM postponed WHERE run_at <= now()) notified) AS notified
            FROM postponed
            """,
            [lease.jobID, lease.replicaID, lease.attempt, until, reason, max(delay ?? .zero, .zero).seconds]
        ).first!.decode("n", as: Int.self) == 1
    }

    /// Queued jobs of `kind` waiting because they were postponed with a reason starting with
    /// `reasonPrefix` (e.g. the circuit breaker's).
    public func countPostponed(kind: String, reasonPrefix: String) async throws -> Int {
        try await pool.query(
            """
            SELECT count(*) AS n FROM jobs WHERE status = 'queued' AND kind = $1 AND run_at > now() AND starts_with(last_error, $2)
            """,
            [kind, reasonPrefix]
        ).first!.decode("n")
    }

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

    // MARK: Liveness

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
        try decodeHeartbeat(try await session.query(heartbeatSQL, heartbeatParameters(replicaID, lease, holding)))
    }

    /// The same heartbeat through the pool; with `holding` nil it extends every job running under
    /// `replicaID` (tools and tests that hold no worker).
    public func heartbeat(
        replicaID: String, lease: Duration, holding: [JobLease]? = nil
    ) async throws -> HeartbeatResult {
        try Self.decodeHeartbeat(
            try await pool.query(Self.heartbeatSQL, Self.heartbeatParameters(replicaID, lease, holding)))
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

    // MARK: Reading

    /// One job by id.
    public func job(id: Int64) async throws -> Job? {
        try await pool.query("SELECT \(Job.columns) FROM jobs WHERE id = $1", [id]).first.map(Job.init(row:))
    }

    /// Job counts by status (every status present, zero when none).
    public func countsByStatus() async throws -> [JobStatus: Int] {
        var counts = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0, 0) })
        for row in try await pool.query("SELECT status, count(*) AS n FROM jobs GROUP BY status").rows {
            counts[try row.decode("status", as: JobStatus.self)] = try row.decode("n")
        }
        return counts
    }

    /// Jobs about one task (their payload names its `work_item`), newest first.
    public func jobs(workItem: String, limit: Int = 50) async throws -> [Job] {
        try await pool.query(
            "SELECT \(Job.columns) FROM jobs WHERE payload->>'work_item' = $1 ORDER BY id DESC LIMIT $2",
            [workItem, limit]
        ).rows.map(Job.init(row:))
    }

    /// The most recently created jobs.
    public func recent(limit: Int = 10) async throws -> [Job] {
        try await pool.query("SELECT \(Job.columns) FROM jobs ORDER BY id DESC LIMIT $1", [limit]).rows.map(
            Job.init(row:))
    }
}
