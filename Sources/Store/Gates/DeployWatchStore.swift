import Foundation

/// The `deploy_watches` table: the post-deploy watch's state, kept in the database so that any
/// replica can continue a watch another one started. Storage only; the worker decides.
public struct DeployWatchStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// What the deploy job hands over: the deploy it ran and the URL to watch.
    public struct Handover: Sendable, Equatable {
        public var workItem: String
        public var repo: String
        public var mergeSHA: String
        public var healthURL: String

        public init(workItem: String, repo: String, mergeSHA: String, healthURL: String) {
            self.workItem = workItem
            self.repo = repo
            self.mergeSHA = mergeSHA
            self.healthURL = healthURL
        }
    }

    /// Hands a deploy stage visit over to its watch, in one transaction that first locks the task
    /// row and completes the deploy job behind its `fence` (`JobFenceLost` otherwise): the watch
    /// row and its `post_deploy_watch` job are created together with that completion, so the task
    /// is never left active without a live job, whatever crashes when. The task stays active in
    /// deploy; only the watch's outcome moves it. Throws `StaleOutcome` (nothing written) when
    /// the task left the `about` visit meanwhile; nil when there is no such task.
    public func start(_ handover: Handover, about: StageVisit, fence: JobLease) async throws -> DeployWatch? {
        try await pool.withTransaction { connection in
            // Lock order everywhere: the task row, then job rows.
            guard
                let row = try await connection.query(
                    "SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1 FOR UPDATE", [handover.workItem]
                ).first
            else { return nil }
            try await JobStore.completeFenced(fence, on: connection)
            let task = try TaskRecord(row: row)
            guard task.state.status == .active, task.currentVisit == about else {
                throw StaleOutcome(about: about, state: task.state, visit: task.visit)
            }
            let watch = try await connection.query(
                """
                INSERT INTO deploy_watches (work_item, repo, visit, merge_sha, health_url)
                VALUES ($1, $2, $3, $4, $5)
                RETURNING \(DeployWatch.columns)
                """,
                [handover.workItem, handover.repo, about.visit, handover.mergeSHA, handover.healthURL]
            ).first.map(DeployWatch.init(row:))!
            let job = try PostDeployWatchJob.job(
                .init(work_item: handover.workItem, visit: about.visit, merge_sha: handover.mergeSHA))
            guard try await JobStore(pool: pool).enqueue([job], on: connection).first ?? nil != nil else {
                throw DuplicateStageJob(dedupeKey: job.dedupeKey ?? "")
            }
            return watch
        }
    }

    /// The watch of a deploy stage visit and the database's clock now, or nil when there is none.
    public func watch(workItem: String, visit: Int) async throws -> (watch: DeployWatch, now: Date)? {
        try await pool.query(
            "SELECT \(DeployWatch.columns), now() AS now FROM deploy_watches WHERE work_item = $1 AND visit = $2",
            [workItem, visit]
        ).first.map { (try DeployWatch(row: $0), try $0.decode("now", as: Date.self)) }
    }

    /// Records one probe of a watch still `watching`, only while `fence` (the watch job's lease)
    /// holds — a replica that lost the job writes nothing (`JobFenceLost`). Returns the watch as
    /// updated and the database's clock.
    public func recordProbe(
        id: Int64, failed: Bool, status: Int?, error: String?, fence: JobLease
    ) async throws -> (watch: DeployWatch, now: Date) {
        let row = try await pool.query(
            """
            UPDATE deploy_watches SET probes = probes + 1, failed_probes = failed_probes + $2::int,
                consecutive_failures = CASE WHEN $2::int = 1 THEN consecutive_failures + 1 ELSE 0 END,
                last_probe_at = now(), last_status = $3, last_error = $4
            WHERE id = $1 AND result = 'watching'
              AND EXISTS (SELECT 1 FROM jobs WHERE id = $5 AND status = 'running' AND locked_by = $6 AND attempt = $7)
            RETURNING \(DeployWatch.columns), now() AS now
            """,
            [
                id, failed ? 1 : 0, status, error.map { String($0.prefix(2000)) }, fence.jobID, fence.replicaID,
                fence.attempt,
            ]
        ).first
        guard let row else { throw JobFenceLost(lease: fence) }
        return (try DeployWatch(row: row), try row.decode("now"))
    }

    /// Ends a watch still `watching` with its result, in the caller's transaction (the one that
    /// applies the task's outcome). Returns whether it ended it.
    @discardableResult
    public static func finish(
        id: Int64, result: DeployWatch.Result, reason: String, on connection: Connection
    ) async throws -> Bool {
        try await connection.query(
            """
            UPDATE deploy_watches SET result = $2, reason = $3, finished_at = now()
            WHERE id = $1 AND result = 'watching'
            """,
            [id, result, String(SecretRedactor.shared.redact(reason).prefix(2000))]
        ).affectedRows == 1
    }

    /// Ends the watches of a task's deploy visit that are still `watching` as `stopped`: the task
    /// left the visit (cancelled, the watch job failed for good). Returns how many.
    @discardableResult
    public static func stop(workItem: String, visit: Int, reason: String, on connection: Connection) async throws -> Int
    {
        try await connection.query(
            """
            UPDATE deploy_watches SET result = 'stopped', reason = $3, finished_at = now()
            WHERE work_item = $1 AND visit = $2 AND result = 'watching'
            """,
            [workItem, visit, String(SecretRedactor.shared.redact(reason).prefix(2000))]
        ).affectedRows
    }

    /// `stop` in a transaction of its own.
    @discardableResult
    public func stop(workItem: String, visit: Int, reason: String) async throws -> Int {
        try await pool.withConnection { try await Self.stop(workItem: workItem, visit: visit, reason: reason, on: $0) }
    }

    /// Watches in progress, oldest first.
    public func watching(limit: Int = 50) async throws -> [DeployWatch] {
        try await pool.query(
            "SELECT \(DeployWatch.columns) FROM deploy_watches WHERE result = 'watching' ORDER BY started_at LIMIT $1",
            [limit]
        ).rows.map(DeployWatch.init(row:))
    }

    /// The latest finished watches, newest first.
    public func recent(limit: Int = 20) async throws -> [DeployWatch] {
        try await pool.query(
            """
            SELECT \(DeployWatch.columns) FROM deploy_watches WHERE finished_at IS NOT NULL
            ORDER BY finished_at DESC, id DESC LIMIT $1
            """,
            [limit]
        ).rows.map(DeployWatch.init(row:))
    }
}
