import Foundation
import Logging

/// The job queue's SQL: enqueue, claim, fenced completion, retry, cancel, rescue and pruning.
public struct JobStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Most jobs one claim takes (the worker's batch is capped to it).
    public static let maximumClaimBatch = 100

    // The hot statement, built once per batch size. The LIMIT is written into the text rather
    // than passed as a parameter: with a parameter the planner cannot know the batch is small,
    // and the generic plan (which a claim session forces, to spare a plan per call) would hash
    // the whole table instead of walking the claim index. See docs/architecture.md, "The queue's
    // hot statement".
    static let completeAndClaimSQL: [String] = (0...maximumClaimBatch).map { limit in
        """
        WITH done AS (
            UPDATE jobs j
            SET status = 'completed', finished_at = now(), lease_expires_at = NULL
            FROM unnest($1::bigint[], $2::int[]) AS f(id, attempt)
            -- COLLATE "C" (the same test for equality) keeps the planner off jobs_running_idx:
            -- read whole, that partial index walks every dead entry of finished jobs, where ten
            -- primary-key probes find the batch.
            WHERE j.id = f.id AND j.status COLLATE "C" = 'running' AND j.locked_by = $3 AND j.attempt = f.attempt
            RETURNING j.id
        ), candidates AS (
            SELECT id FROM jobs
            WHERE status = 'queued' AND queue = $4 AND run_at <= now()
              AND NOT EXISTS (SELECT 1 FROM replicas WHERE id = $3 AND stopped_at IS NOT NULL)
            ORDER BY priority, run_at, id
            LIMIT \(limit)
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE jobs j
            SET status = 'running', attempt = j.attempt + 1, locked_by = $3, claimed_at = now(),
                lease_expires_at = now() + make_interval(secs => $5::float8), finished_at = NULL
            FROM candidates c
            WHERE j.id = c.id
            RETURNING \(Job.qualified(Job.claimedColumns, by: "j"))
        )
        SELECT d.completed_ids, \(Job.qualified(Job.claimedColumns, by: "claimed"))
        FROM (SELECT coalesce(array_agg(id), '{}') AS completed_ids FROM done) d
        LEFT JOIN claimed ON true
        """
    }

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

    /// A database session of its own for one worker's claims (`completeAndClaim(…, on:)`).
    ///
    /// It runs every statement with PostgreSQL's generic plan (`plan_cache_mode =
    /// force_generic_plan`): the claim statement is then planned once per session instead of on
    /// every call, which was a fifth of the server's work per batch. Only the claim statement,
    /// whose generic plan is known to be right, runs there. One connection per worker, outside
    /// the pool (docs/operations.md, sizing).
    ///
    /// A session that holds inline jobs (`finishAndClaim(held:…)`) is ended by the server when it
    /// sits in a transaction longer than `holdLimit` (`idle_in_transaction_session_timeout`): a
    /// paused replica cannot keep inline jobs locked past its lease.
    public func makeClaimSession(name: String, holdLimit: Duration = .seconds(30), logger: Logger) -> DedicatedSession {
        DedicatedSession(
            configuration: pool.configuration, name: name, timeout: .seconds(30),
            settings: [
                "SET plan_cache_mode = force_generic_plan",
                "SET idle_in_transaction_session_timeout = \(max(1, Int(holdLimit.seconds * 1000)))",
            ], logger: logger)
    }

    /// Completes `finished` (jobs `replicaID` ran to success; fenced by attempt) and claims up to
    /// `limit` (at most `maximumClaimBatch`) due jobs from `queue`, in one statement and one
    /// commit: a busy worker pays one round trip per batch instead of two. Runs on `session`
    /// when given (a claim session), else on the pool. Returns the ids actually completed and
    /// the new claims.
    public func completeAndClaim(
        finished: [JobLease], replicaID: String, queue: String, limit: Int, lease: Duration,
        on session: DedicatedSession? = nil
    ) async throws -> (completed: Set<Int64>, claimed: [Job]) {
        let sql = Self.completeAndClaimSQL[min(max(0, limit), Self.maximumClaimBatch)]
        let parameters: [any PostgresEncodable] = [
            PostgresArray(finished.map(\.jobID)), PostgresArray(finished.map(\.attempt)), replicaID, queue, lease,
        ]
        let result =
            if let session { try await session.query(sql, parameters) } else {
                try await pool.query(sql, parameters)
            }
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
        let result = try await pool.query(Self.completeSQL, Self.completeParameters(leases))
        return Set(try result.rows.map { try $0.decode("id", as: Int64.self) })
    }

    // `status COLLATE "C"`: found by primary key, never by walking jobs_running_idx (see
    // completeAndClaimSQL).
    static let completeSQL = """
        UPDATE jobs j
        SET status = 'completed', finished_at = clock_timestamp(), lease_expires_at = NULL
        FROM unnest($1::bigint[], $2::text[], $3::int[]) AS f(id, replica, attempt)
        WHERE j.id = f.id AND j.status COLLATE "C" = 'running' AND j.locked_by = f.replica AND j.attempt = f.attempt
        RETURNING j.id
        """

    static func completeParameters(_ leases: [JobLease]) -> [any PostgresEncodable] {
        [
            PostgresArray(leases.map(\.jobID)), PostgresArray(leases.map(\.replicaID)),
            PostgresArray(leases.map(\.attempt)),
        ]
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

}
