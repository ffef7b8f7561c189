import Foundation
import Store
import TestSupport
import XCTest

/// Inline jobs (docs/architecture.md, "Inline jobs") on real replicas: a replica killed or paused
/// while it holds a batch loses nothing and writes nothing; the other replica runs the batch and
/// writes each job once. (`MultiReplicaTests` starts and stops the processes.)
extension MultiReplicaTests {
    private func replicaID(named name: String) async throws -> String? {
        try await database.pool.query(
            "SELECT id FROM replicas WHERE name = $1 AND stopped_at IS NULL ORDER BY started_at DESC LIMIT 1", [name]
        ).first?.decode("id")
    }

    /// Replica ids whose claim session sits in an open transaction: they hold an inline batch.
    private func holders() async throws -> [String] {
        try await database.pool.query(
            """
            SELECT r.id FROM pg_stat_activity a JOIN replicas r ON a.application_name = left('orchestrator ' || r.id || ' claims', 63)
            WHERE a.state = 'idle in transaction'
            """
        ).rows.map { try $0.decode("id") }
    }

    private func enqueueInline(_ count: Int, ms: Int) async throws -> [Int64] {
        try await jobs.enqueue(
            Array(
                repeating: NewJob(kind: DiagnosticJob.Inline.kind, payload: JSONB(text: #"{"ms": \#(ms)}"#)),
                count: count)
        ).compactMap { $0 }
    }

    private func startPair(_ environment: [String: String]) async throws -> [String: (OrchestratorProcess, String)] {
        var replicas: [String: (OrchestratorProcess, String)] = [:]
        for name in ["inline-a", "inline-b"] {
            let process = try start(name, environment)
            var id: String?
            _ = try await waitUntil(timeout: .seconds(30)) {
                id = try await replicaID(named: name)
                return id != nil
            }
            replicas[try XCTUnwrap(id)] = (process, name)
        }
        return replicas
    }

    /// Waits until a replica holds an inline batch: (its process, its id, the other replica's id).
    private func holder(
        of replicas: [String: (OrchestratorProcess, String)]
    ) async throws -> (OrchestratorProcess, String, String) {
        var holding: [String] = []
        let held = try await waitUntil(timeout: .seconds(20)) {
            holding = try await holders()
            return !holding.isEmpty
        }
        XCTAssertTrue(held, "a replica holds the inline batch")
        let victimID = try XCTUnwrap(holding.first)
        let (victim, _) = try XCTUnwrap(replicas[victimID])
        return (victim, victimID, try XCTUnwrap(replicas.keys.first { $0 != victimID }))
    }

    private func waitUntilCompleted(_ ids: [Int64]) async throws -> Bool {
        try await waitUntil(timeout: .seconds(30)) {
            var finished = 0
            for id in ids where try await jobs.job(id: id)?.status == .completed { finished += 1 }
            return finished == ids.count
        }
    }

    func testAReplicaKilledWhileHoldingAnInlineBatchLosesNothingAndTheOtherWritesEachJobOnce() async throws {
        // A long TTL: only the closed connection can free the batch, never a lease or a timeout.
        let replicas = try await startPair(["ORCH_HEARTBEAT_TTL": "20s"])
        let ids = try await enqueueInline(4, ms: 4000)
        let (victim, victimID, survivorID) = try await holder(of: replicas)
        victim.signal(SIGKILL)

        let done = try await waitUntilCompleted(ids)
        XCTAssertTrue(done, "every job completed after the kill")
        for id in ids {
            let job = try await jobs.job(id: id)!
            XCTAssertEqual(job.lockedBy, survivorID, "job \(id) written by the survivor")
            XCTAssertEqual(job.attempt, 1, "job \(id): the killed replica's batch was rolled back, no attempt spent")
        }
        let byVictim = try await database.pool.query(
            "SELECT count(*) AS n FROM diag_executions WHERE replica_id = $1", [victimID]
        ).first!.decode("n", as: Int.self)
        XCTAssertEqual(byVictim, 0, "killed mid-run: nothing of the victim's runs was recorded")
    }

    func testAReplicaPausedPastItsLeaseWhileHoldingAnInlineBatchNeverWritesIt() async throws {
        // TTL 3 s: the server ends a claim session idle in its transaction after 3 s.
        let replicas = try await startPair([:])
        let ids = try await enqueueInline(2, ms: 1200)
        let (victim, _, survivorID) = try await holder(of: replicas)
        victim.signal(SIGSTOP)

        let done = try await waitUntilCompleted(ids)
        XCTAssertTrue(done, "the survivor ran the paused replica's batch")
        victim.signal(SIGCONT)
        // Resumed, the paused replica's handlers end and it tries to commit their outcomes.
        let refused = await waitUntil(timeout: .seconds(20)) {
            victim.output.contains("inline batch not committed")
        }
        XCTAssertTrue(refused, "the resumed replica's commit failed:\n\(victim.output.suffix(3000))")
        for id in ids {
            let job = try await jobs.job(id: id)!
            XCTAssertEqual(job.status, .completed)
            XCTAssertEqual(job.lockedBy, survivorID, "job \(id) written once, by the survivor")
            XCTAssertEqual(job.attempt, 1)
        }
        // And it works on: a new batch is run and written.
        let later = try await waitUntilCompleted(try await enqueueInline(4, ms: 0))
        XCTAssertTrue(later, "inline jobs enqueued after the resume complete")
    }

    /// SIGTERM with a backlog of inline jobs: the worker writes the batch it holds and claims no
    /// more (inline jobs take no running slot, so a full worker is no reason to stop claiming).
    func testSIGTERMStopsClaimingInlineJobsAndWritesTheBatchHeld() async throws {
        let leaving = try start("inline-leaving", ["ORCH_SHUTDOWN_GRACE": "500ms"])
        _ = try await waitUntil(timeout: .seconds(30)) { try await replicaID(named: "inline-leaving") != nil }
        let ids = try await enqueueInline(3000, ms: 50)
        let started = try await waitUntil(timeout: .seconds(20)) {
            try await database.pool.query(
                "SELECT count(*) AS n FROM jobs WHERE kind = 'diag.inline' AND status = 'completed'"
            ).first!.decode("n", as: Int.self) >= 20
        }
        XCTAssertTrue(started, "the replica runs the backlog")
        leaving.signal(SIGTERM)
        let exited = await leaving.waitForExit(timeout: .seconds(10))
        XCTAssertTrue(exited, "exits soon after SIGTERM, without draining the backlog")
        XCTAssertEqual(leaving.process.terminationStatus, 0)
        let states = try await database.pool.query(
            "SELECT status, count(*) AS n FROM jobs WHERE id = ANY($1::bigint[]) GROUP BY status", [PostgresArray(ids)]
        ).rows.map { (try $0.decode("status", as: String.self), try $0.decode("n", as: Int.self)) }
        let byStatus = Dictionary(uniqueKeysWithValues: states)
        XCTAssertEqual(Set(byStatus.keys).subtracting(["queued", "completed"]), [], "\(byStatus)")
        XCTAssertGreaterThan(byStatus["queued"] ?? 0, 1000, "the backlog is left for the others: \(byStatus)")
        let unwritten = try await database.pool.query(
            """
            SELECT count(*) AS n FROM jobs j WHERE j.id = ANY($1::bigint[]) AND j.status = 'queued'
            AND EXISTS (SELECT 1 FROM diag_executions e WHERE e.job_id = j.id)
            """, [PostgresArray(ids)]
        ).first!.decode("n", as: Int.self)
        XCTAssertEqual(unwritten, 0, "every job it ran was written before it exited")
    }
}
