import Foundation
import Store
import TestSupport
import XCTest

/// What the reaper's every-replica duties read and write: the startup reclaim of this replica's
/// own leases (jobs of earlier incarnations, `merge_leases` rows naming them), the ended tasks
/// whose worktrees may go, and the per-replica records `/queue` shows.
final class ReaperStoreTests: DatabaseTestCase {
    var jobs: JobStore!
    var replicas: ReplicaStore!

    override func setUp() async throws {
        try await super.setUp()
        jobs = JobStore(pool: database.pool)
        replicas = ReplicaStore(pool: database.pool)
    }

    private func status(_ id: Int64) async throws -> JobStatus? {
        try await jobs.job(id: id)?.status
    }

    /// Enqueues a job and has `replicaID` claim it; returns its id.
    private func running(on replicaID: String) async throws -> Int64 {
        let id = try await jobs.enqueue(NewJob(kind: "k", queue: replicaID))!
        _ = try await jobs.claim(queues: [replicaID], replicaID: replicaID, limit: 1, lease: .seconds(600))
        return id
    }

    func testStartupReclaimTakesBackJobsOfAnIncarnationAlreadyMarkedStopped() async throws {
        // node-1's earlier life was marked stopped by the leader's sweep, but its jobs were not
        // rescued (the reaper is off, or its rescue had not run yet).
        try await replicas.register(id: "node-1-old", name: "node-1", host: "h1", pid: 111, role: "all")
        try await replicas.register(id: "node-1-sibling", name: "node-1", host: "h1", pid: 222, role: "all")
        try await replicas.register(id: "node-2-old", name: "node-2", host: "h1", pid: 333, role: "all")
        let mine = try await running(on: "node-1-old")
        let sibling = try await running(on: "node-1-sibling")
        let other = try await running(on: "node-2-old")
        try await database.pool.query(
            "UPDATE replicas SET stopped_at = now() WHERE id IN ('node-1-old', 'node-2-old')")

        let recovered = try await replicas.recoverPreviousIncarnations(
            id: "node-1-new", name: "node-1", host: "h1", staleAfter: .seconds(60), isDead: { _ in false })

        XCTAssertEqual(recovered, [mine])
        let value1 = try await status(mine)
        XCTAssertEqual(value1, .queued)
        let value2 = try await status(sibling)
        XCTAssertEqual(value2, .running, "a live replica's job is never touched, even under the same name")
        let value3 = try await status(other)
        XCTAssertEqual(value3, .running, "another replica's stopped life is the leader's to rescue")
    }

    func testStartupReclaimRemovesMergeLeaseRowsOfEarlierIncarnationsWhoseLockIsFree() async throws {
        try await replicas.register(id: "node-1-old", name: "node-1", host: "h1", pid: 111, role: "all")
        try await replicas.register(id: "node-1-held", name: "node-1", host: "h1", pid: 112, role: "all")
        try await replicas.register(id: "node-2-old", name: "node-2", host: "h1", pid: 333, role: "all")
        try await database.pool.query("UPDATE replicas SET stopped_at = now()")
        let leases = MergeLeaseStore(pool: database.pool)
        let key = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.merge, text: "acme/held")
        try await database.pool.withAdvisoryLock(key) { handle in
            for (repo, replica, pid) in [
                ("acme/gone", "node-1-old", Int32(999_999)), ("acme/held", "node-1-held", handle.backendPID),
                ("acme/other", "node-2-old", Int32(999_998)),
            ] {
                try await database.pool.query(
                    "INSERT INTO merge_leases (repo, work_item, replica_id, backend_pid) VALUES ($1, 'ORCH-1', $2, $3)",
                    [repo, replica, pid])
            }
            let removed = try await leases.pruneStale(incarnationsOf: "node-1", host: "h1", except: "node-1-new")
            XCTAssertEqual(removed, 1)
        }
        let left = try await database.pool.query("SELECT repo FROM merge_leases ORDER BY repo").rows.map {
            try $0.decode("repo", as: String.self)
        }
        XCTAssertEqual(
            left, ["acme/held", "acme/other"],
            "a row whose lock was held stays, and another replica's is the leader's merge-lease-sweep")
    }

    func testOnlyTasksEndedLongerThanTheRetentionAreEnded() async throws {
        let tasks = TaskStore(pool: database.pool)
        for workItem in ["ORCH-1", "ORCH-2", "ORCH-3", "ORCH-4", "ORCH-5"] {
            _ = try await tasks.upsert(
                workItem: workItem, repo: "acme/orch", title: workItem, description: "", labels: [], track: .full,
                auto: false, planeIssueID: nil, planeProjectID: nil, planeState: nil)
        }
        try await database.pool.query(
            """
            UPDATE tasks SET status = v.status, updated_at = now() - make_interval(days => v.days)
            FROM (VALUES ('ORCH-1', 'cancelled', 8), ('ORCH-2', 'failed', 1), ('ORCH-3', 'active', 30),
                         ('ORCH-4', 'done', 9), ('ORCH-5', 'held', 30)) AS v(work_item, status, days)
            WHERE tasks.work_item = v.work_item
            """)
        let ended = try await tasks.ended(
            among: ["ORCH-1", "ORCH-2", "ORCH-3", "ORCH-4", "ORCH-5", "ORCH-404"], before: .seconds(7 * 86400))
        XCTAssertEqual(ended, ["ORCH-1", "ORCH-4"])
        let none = try await tasks.ended(among: [], before: .seconds(1))
        XCTAssertEqual(none, [])
    }

    func testReplicaRunsAreKeptPerDutyAndReplica() async throws {
        let store = ReplicaMaintenanceStore(pool: database.pool)
        try await store.record(duty: "worktree-prune", name: "a", host: "h", replicaID: "a-1", affected: 2, error: nil)
        try await store.record(duty: "worktree-prune", name: "a", host: "h", replicaID: "a-2", affected: 1, error: nil)
        try await store.record(duty: "worktree-prune", name: "b", host: "h", replicaID: "b-1", affected: 0, error: "x")
        let runs = try await store.runs()
        XCTAssertEqual(runs.map(\.name), ["a", "b"])
        XCTAssertEqual(runs[0].replicaID, "a-2", "the last process that ran it")
        XCTAssertEqual(runs[0].lastAffected, 1)
        XCTAssertEqual(runs[0].totalAffected, 3)
        XCTAssertEqual(runs[0].runs, 2)
        XCTAssertNil(runs[0].lastError)
        XCTAssertEqual(runs[1].lastError, "x")
    }
}
