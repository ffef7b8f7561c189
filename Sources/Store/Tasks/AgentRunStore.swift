import Foundation

/// The `agent_runs` table.
public struct AgentRunStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// What is known when an agent is about to start.
    public struct Start: Sendable {
        public var workItem: String?
        public var jobID: Int64?
        public var stage: String?
        public var role: String
        public var replicaID: String
        public var host: String
        public var command: [String]
        public var logPath: String?
        /// The run whose session this one resumes.
        public var resumedFrom: Int64?
        /// Why a session that could have been resumed was not.
        public var resumeNote: String?
        /// Which of the role's runners it is (0: the first).
        public var runner: Int

        public init(
            workItem: String?, jobID: Int64?, stage: String?, role: String, replicaID: String, host: String,
            command: [String], logPath: String?, resumedFrom: Int64? = nil, resumeNote: String? = nil, runner: Int = 0
        ) {
            self.runner = runner
            self.resumedFrom = resumedFrom
            self.resumeNote = resumeNote
            self.workItem = workItem
            self.jobID = jobID
            self.stage = stage
            self.role = role
            self.replicaID = replicaID
            self.host = host
            self.command = command
            self.logPath = logPath
        }
    }

    /// Records a run about to start; returns its id.
    public func begin(_ start: Start) async throws -> Int64 {
        try await pool.query(
            """
            INSERT INTO agent_runs (task_id, work_item, job_id, stage, role, replica_id, host, command, log_path,
                                    resumed_from, resume_note, runner)
            VALUES ((SELECT id FROM tasks WHERE work_item = $1), $1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11)
            RETURNING id
            """,
            [
                start.workItem, start.jobID, start.stage, start.role, start.replicaID, start.host,
                PostgresArray(start.command), start.logPath, start.resumedFrom, start.resumeNote, start.runner,
            ]
        ).first!.decode("id")
    }

    /// Records the process once spawned (pid and its start time, to recognise it later).
    public func started(id: Int64, pid: Int, processStart: Int64?, at spawnedAt: Date) async throws {
        try await pool.query(
            "UPDATE agent_runs SET pid = $2, process_start = $3, spawned_at = $4 WHERE id = $1",
            [id, pid, processStart, spawnedAt])
    }

    /// Records how long git took around a run (fetch + worktree before, commit + push after).
    public func recordGitTimings(id: Int64, workspace: Duration, after: Duration) async throws {
        try await pool.query(
            "UPDATE agent_runs SET workspace_ms = $2, git_after_ms = $3 WHERE id = $1",
            [id, workspace.seconds * 1000, after.seconds * 1000])
    }

    /// Records how a run ended.
    public func finish(
        id: Int64, exitCode: Int, timedOut: Bool, stalled: Bool = false, usage: AgentUsage?, error: String?,
        exitedAt: Date? = nil
    ) async throws {
        try await pool.query(
            """
            UPDATE agent_runs SET ended_at = now(), exited_at = $14, exit_code = $2, timed_out = $3, stalled = $15,
                   session_id = $16,
                   input_tokens = $4, output_tokens = $5,
                   cache_read_tokens = $6, cache_write_tokens = $7, cost_usd = $8::float8, model = $9, result_subtype = $10,
                   num_turns = $11, is_error = $12, error = $13
            WHERE id = $1 AND ended_at IS NULL
            """,
            [
                id, exitCode, timedOut, usage?.inputTokens, usage?.outputTokens, usage?.cacheReadTokens,
                usage?.cacheWriteTokens,
                usage?.costUSD, usage?.model, usage?.subtype, usage?.numTurns, usage?.isError, error, exitedAt, stalled,
                usage?.sessionID,
            ])
    }

    /// How many runs of `stage` by `role` the task has had (a stage's next try is this one).
    public func tries(workItem: String, stage: String, role: String) async throws -> Int {
        try await pool.query(
            "SELECT count(*) AS n FROM agent_runs WHERE work_item = $1 AND stage = $2 AND role = $3",
            [workItem, stage, role]
        ).first!.decode("n")
    }

    /// The session a new run of `stage` by `role`'s `runner` for `workItem` may resume: the
    /// latest such run that reported one (its id and the session), or nil.
    public func lastSession(
        workItem: String, stage: String, role: String, runner: Int = 0
    ) async throws -> (runID: Int64, sessionID: String)? {
        guard
            let row = try await pool.query(
                """
                SELECT id, session_id FROM agent_runs
                WHERE work_item = $1 AND stage = $2 AND role = $3 AND runner = $4 AND session_id IS NOT NULL
                ORDER BY id DESC LIMIT 1
                """,
                [workItem, stage, role, runner]
            ).first
        else { return nil }
        return (try row.decode("id"), try row.decode("session_id"))
    }

    /// One run.
    public func run(id: Int64) async throws -> AgentRun? {
        try await pool.query("SELECT \(AgentRun.columns) FROM agent_runs WHERE id = $1", [id]).first.map(
            AgentRun.init(row:))
    }

    /// Runs not ended yet, of one replica or all.
    public func live(replicaID: String? = nil) async throws -> [AgentRun] {
        try await pool.query(
            "SELECT \(AgentRun.columns) FROM agent_runs WHERE ended_at IS NULL AND ($1::text IS NULL OR replica_id = $1) ORDER BY id",
            [replicaID]
        ).rows.map(AgentRun.init(row:))
    }

    /// Runs of one task, oldest first.
    public func runs(workItem: String) async throws -> [AgentRun] {
        try await pool.query("SELECT \(AgentRun.columns) FROM agent_runs WHERE work_item = $1 ORDER BY id", [workItem])
            .rows.map(AgentRun.init(row:))
    }

    /// Runs this host started under earlier incarnations of replica `name` (stopped replicas of
    /// that name on this host) that never ended properly: still open, or closed as lost by the
    /// leader (exit −1) while their process may still be running. Orphans to check at startup.
    public func orphans(name: String, host: String, currentReplicaID: String) async throws -> [AgentRun] {
        try await pool.query(
            """
            SELECT \(AgentRun.columns) FROM agent_runs
            WHERE host = $2 AND (ended_at IS NULL OR (exit_code = -1 AND ended_at > now() - interval '7 days'))
              AND replica_id IN (SELECT id FROM replicas WHERE name = $1 AND host = $2 AND id <> $3 AND stopped_at IS NOT NULL)
            ORDER BY id
            """,
            [name, host, currentReplicaID]
        ).rows.map(AgentRun.init(row:))
    }

    /// Records that a run's result was `superseded` (its job had lost its lease; nothing was
    /// applied) — unless an outcome applied it already: another replica may have resumed the same
    /// run's pushed work and applied it meanwhile.
    public func markSuperseded(id: Int64) async throws {
        try await pool.query("UPDATE agent_runs SET outcome = 'superseded' WHERE id = $1 AND outcome IS NULL", [id])
    }

    /// Records on the caller's connection what became of a run's result (`applied` inside the
    /// stage outcome's transaction).
    public static func markOutcome(id: Int64, outcome: String, on connection: Connection) async throws {
        try await connection.query("UPDATE agent_runs SET outcome = $2 WHERE id = $1", [id, outcome])
    }

    /// What a successful run produced: the head it started from, the commit of its work, and the
    /// head pushed (nil until the push went through).
    public struct RunWork: Sendable, Equatable {
        public let runID: Int64
        public let base: String
        public let committed: String
        public let pushed: String?

        /// Creates the facts of a run's work.
        public init(runID: Int64, base: String, committed: String, pushed: String?) {
            self.runID = runID
            self.base = base
            self.committed = committed
            self.pushed = pushed
        }
    }

    /// Records that run `id` succeeded and its work was committed as `committed` on top of `base`.
    public func recordCommitted(id: Int64, base: String, committed: String) async throws {
        try await pool.query(
            "UPDATE agent_runs SET base_sha = $2, committed_sha = $3 WHERE id = $1", [id, base, committed])
    }

    /// Records that run `id`'s work was pushed: the branch is at `pushed`.
    public func recordPushed(id: Int64, pushed: String) async throws {
        try await pool.query("UPDATE agent_runs SET pushed_sha = $2 WHERE id = $1", [id, pushed])
    }

    /// The newest run of job `jobID` (any attempt) that succeeded and committed its work and whose
    /// result no outcome applied yet: a retry of the job picks it up instead of running the agent again.
    public func work(jobID: Int64) async throws -> RunWork? {
        try await pool.query(
            """
            SELECT id, base_sha, committed_sha, pushed_sha FROM agent_runs
            WHERE job_id = $1 AND committed_sha IS NOT NULL AND base_sha IS NOT NULL AND outcome IS DISTINCT FROM 'applied'
            ORDER BY id DESC LIMIT 1
            """,
            [jobID]
        ).first.map {
            RunWork(
                runID: try $0.decode("id"), base: try $0.decode("base_sha"), committed: try $0.decode("committed_sha"),
                pushed: try $0.decode("pushed_sha"))
        }
    }

    /// Closes open runs as lost (exit −1) with the reason (orphans, runs of gone replicas);
    /// returns how many it closed.
    @discardableResult
    public func closeLost(ids: [Int64], reason: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.query(
            "UPDATE agent_runs SET ended_at = now(), exit_code = -1, error = $2 WHERE id = ANY($1::bigint[]) AND ended_at IS NULL",
            [PostgresArray(ids), reason]
        ).affectedRows
    }

    /// Closes the open runs of replicas that are gone (stopped, or silent longer than
    /// `staleAfter`, judged by the database clock) as lost (exit −1). Returns the closed runs.
    public func closeRunsOfGoneReplicas(staleAfter: Duration) async throws -> [AgentRun] {
        try await pool.query(
            """
            UPDATE agent_runs a SET ended_at = now(), exit_code = -1, error = 'replica ' || a.replica_id || ' is gone'
            WHERE a.ended_at IS NULL AND NOT EXISTS (
                SELECT 1 FROM replicas r WHERE r.id = a.replica_id AND r.stopped_at IS NULL
                  AND r.heartbeat_at >= now() - make_interval(secs => $1::float8))
            RETURNING \(AgentRun.columns)
            """,
            [staleAfter]
        ).rows.map(AgentRun.init(row:))
    }

    /// The latest runs, newest first.
    public func recent(limit: Int) async throws -> [AgentRun] {
        try await pool.query("SELECT \(AgentRun.columns) FROM agent_runs ORDER BY id DESC LIMIT $1", [limit]).rows.map(
            AgentRun.init(row:))
    }

    /// Cost and tokens of one task per stage (known costs only; `runs` counts every run).
    public func costByStage(workItem: String) async throws -> [StageCost] {
        try await pool.query(
            """
            SELECT coalesce(stage, '') AS stage, count(*) AS runs, coalesce(sum(cost_usd), 0)::float8 AS usd,
                   coalesce(sum(input_tokens), 0)::bigint AS input, coalesce(sum(output_tokens), 0)::bigint AS output
            FROM agent_runs WHERE work_item = $1 GROUP BY stage ORDER BY min(id)
            """,
            [workItem]
        ).rows.map {
            StageCost(
                stage: try $0.decode("stage"), runs: try $0.decode("runs"), costUSD: try $0.decode("usd"),
                input: try $0.decode("input"),
                output: try $0.decode("output"))
        }
    }

    /// Aggregate cost: runs, USD (known costs only) and tokens.
    public func totals() async throws -> AgentRunTotals {
        let row = try await pool.query(
            """
            SELECT count(*) AS runs, coalesce(sum(cost_usd), 0)::float8 AS usd, coalesce(sum(input_tokens), 0)::bigint AS input,
                   coalesce(sum(output_tokens), 0)::bigint AS output, coalesce(sum(cache_read_tokens), 0)::bigint AS cache_read,
                   coalesce(sum(cache_write_tokens), 0)::bigint AS cache_write
            FROM agent_runs
            """
        ).first!
        return AgentRunTotals(
            runs: try row.decode("runs"), costUSD: try row.decode("usd"), input: try row.decode("input"),
            output: try row.decode("output"),
            cacheRead: try row.decode("cache_read"), cacheWrite: try row.decode("cache_write"))
    }
}
