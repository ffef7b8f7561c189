import Foundation

/// Per repository one merge at a time across all replicas: the merge lease.
///
/// The lease is a session advisory lock (``AdvisoryLockKey/Namespace/merge``, `hashtext(repo)`)
/// on a dedicated connection, held for the whole merge and the verification of its merge commit.
/// The lock is the truth: a replica that dies ends its session and frees the lease at once, with
/// nobody to clean up. The `merge_leases` row only mirrors the holder (task, replica, since) for
/// operators; it is read joined with `pg_locks`, so a row left by a dead holder never shows.
public struct MergeLeaseStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// The start of the reason a merge job waiting for the lease is postponed with: the release
    /// wakes exactly those jobs, and `/queue` counts them.
    public static let waitReason = "waiting for the merge lease"

    /// A live lease: who holds it and since when.
    public struct Lease: Sendable, Equatable, Encodable {
        public let repo: String
        public let workItem: String
        public let replicaID: String
        public let since: Date
    }

    static func key(repo: String) -> AdvisoryLockKey {
        AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.merge, text: repo)
    }

    /// Runs `body` holding `repo`'s lease, if it is free now; nil (without running `body`) when
    /// another merge holds it. The holder is recorded for operators while `body` runs. Once the
    /// lock is released, the repository's merge jobs postponed for it are made due at once (and
    /// the workers told), so the next merge does not wait for its postponement to run out.
    /// `body` is given the lease to confirm before each step it cannot undo (``MergeLease``).
    public func withLease<T>(
        repo: String, workItem: String, replicaID: String,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (MergeLease) async throws -> T
    ) async throws -> T? {
        // A lease seen held is not tried: no connection opened just to be refused (a waiting
        // merge looks twice a second). The try below stays the only judge of a free one.
        guard try await !isHeld(repo: repo) else { return nil }
        var held = false
        do {
            let result = try await pool.withTryAdvisoryLock(Self.key(repo: repo)) { handle -> T in
                held = true
                try await record(repo: repo, workItem: workItem, replicaID: replicaID, backendPID: handle.backendPID)
                do {
                    let value = try await body(MergeLease(handle: handle, repo: repo))
                    await clear(repo: repo, backendPID: handle.backendPID)
                    return value
                } catch {
                    await clear(repo: repo, backendPID: handle.backendPID)
                    throw error
                }
            }
            if held { await wakeWaiting(repo: repo) }
            return result
        } catch {
            if held { await wakeWaiting(repo: repo) }
            throw error
        }
    }

    private func record(repo: String, workItem: String, replicaID: String, backendPID: Int32) async throws {
        // A row left by a holder that died is overwritten: the lock says it is gone.
        try await pool.query(
            """
            INSERT INTO merge_leases (repo, work_item, replica_id, backend_pid, since) VALUES ($1, $2, $3, $4, now())
            ON CONFLICT (repo) DO UPDATE SET work_item = $2, replica_id = $3, backend_pid = $4, since = now()
            """,
            [repo, workItem, replicaID, backendPID])
    }

    /// Best effort: a row left behind is stale, never shown, and overwritten by the next holder.
    private func clear(repo: String, backendPID: Int32) async {
        _ = try? await pool.query("DELETE FROM merge_leases WHERE repo = $1 AND backend_pid = $2", [repo, backendPID])
    }

    /// Makes `repo`'s merge jobs postponed for the lease due now and wakes the workers. Best
    /// effort: a job not woken runs when its short postponement ends.
    private func wakeWaiting(repo: String) async {
        _ = try? await pool.query(
            """
            WITH woken AS (
                UPDATE jobs j SET run_at = now() FROM tasks t
                WHERE j.status = 'queued' AND j.kind = $2 AND j.payload->>'stage' = 'merge' AND j.run_at > now()
                  AND starts_with(j.last_error, $3) AND t.work_item = j.payload->>'work_item' AND t.repo = $1
                RETURNING j.queue
            )
            SELECT pg_notify('orch_jobs', queue) FROM woken
            """,
            [repo, TaskStore.stageJobKind, Self.waitReason])
    }

    /// The merge leases granted in this database (`pid`, `objid` = `hashtext(repo)` as an oid),
    /// from `pg_locks`; `$1` is the merge namespace.
    static let grantedLeases = """
        SELECT pid, objid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = ($1::int)::oid
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """

    /// Whether some session holds `repo`'s lease now.
    func isHeld(repo: String) async throws -> Bool {
        try await pool.query(
            """
            SELECT EXISTS (SELECT 1 FROM (\(Self.grantedLeases)) k WHERE k.objid = hashtext($2)::oid) AS held
            """,
            [AdvisoryLockKey.Namespace.merge, repo]
        ).first!.decode("held")
    }

    /// The leases held now, by repository: rows whose backend still holds the advisory lock.
    public func live() async throws -> [Lease] {
        try await pool.query(
            """
            SELECT l.repo, l.work_item, l.replica_id, l.since FROM merge_leases l
            WHERE EXISTS (
                SELECT 1 FROM (\(Self.grantedLeases)) k WHERE k.pid = l.backend_pid AND k.objid = hashtext(l.repo)::oid)
            ORDER BY l.repo
            """,
            [AdvisoryLockKey.Namespace.merge]
        ).rows.map {
            Lease(
                repo: try $0.decode("repo"), workItem: try $0.decode("work_item"),
                replicaID: try $0.decode("replica_id"), since: try $0.decode("since"))
        }
    }

    /// Deletes the rows of holders that no longer hold the lock (their replica died, or a release
    /// could not clear its row): the reaper's `merge-lease-sweep`. `/queue` never shows them, and
    /// the next holder overwrites one, but a repository that merges no more would keep it forever.
    /// Returns how many were deleted.
    public func pruneStale() async throws -> Int {
        try await pool.query(
            """
            DELETE FROM merge_leases l WHERE NOT EXISTS (
                SELECT 1 FROM (\(Self.grantedLeases)) k WHERE k.pid = l.backend_pid AND k.objid = hashtext(l.repo)::oid)
            """,
            [AdvisoryLockKey.Namespace.merge]
        ).affectedRows
    }

    /// Startup reclaim: deletes the rows naming an earlier incarnation of this replica (same name
    /// and host, another id, marked stopped) whose lock is free. Their holder's session is gone, so
    /// the row only misleads; one whose lock is still held (a session the server has not yet seen
    /// die) is left for the leader's `merge-lease-sweep`. Returns how many were deleted.
    public func pruneStale(incarnationsOf name: String, host: String, except replicaID: String) async throws -> Int {
        try await pool.query(
            """
            DELETE FROM merge_leases l
            WHERE l.replica_id IN (SELECT id FROM replicas
                                   WHERE name = $2 AND host = $3 AND id <> $4 AND stopped_at IS NOT NULL)
              AND NOT EXISTS (
                SELECT 1 FROM (\(Self.grantedLeases)) k WHERE k.pid = l.backend_pid AND k.objid = hashtext(l.repo)::oid)
            """,
            [AdvisoryLockKey.Namespace.merge, name, host, replicaID]
        ).affectedRows
    }

    /// Merge jobs queued because the lease was taken.
    public func waitingJobs() async throws -> Int {
        try await JobStore(pool: pool).countPostponed(kind: TaskStore.stageJobKind, reasonPrefix: Self.waitReason)
    }
}
