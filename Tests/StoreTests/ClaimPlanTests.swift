import Foundation
import TestSupport
import XCTest

@testable import Store

/// The plan PostgreSQL keeps for the queue's hot statement on a claim session (generic plans
/// forced, so it is planned once per session): it must stay the cheap one whatever the table
/// holds. Measured on the drain benchmark: planning on every call cost a fifth of the server's
/// work per batch, and completing through `jobs_running_idx` read about 500 dead index entries
/// per batch.
final class ClaimPlanTests: DatabaseTestCase {
    func testTheClaimSessionsGenericPlanWalksTheClaimIndexAndCompletesByPrimaryKey() async throws {
        let jobs = JobStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(
            id: "replica-a", name: "replica-a", host: "test", pid: 1, role: "worker")
        // A table like a busy one: many queued jobs, and finished ones of this replica.
        try await database.pool.query(
            """
            INSERT INTO jobs (kind, queue, status, locked_by, attempt, finished_at)
            SELECT 'bench.noop', 'plan', CASE WHEN g % 2 = 0 THEN 'queued' ELSE 'completed' END,
                   CASE WHEN g % 2 = 0 THEN NULL ELSE 'replica-a' END, g % 2, CASE WHEN g % 2 = 0 THEN NULL ELSE now() END
            FROM generate_series(1, 20000) g
            """)
        try await database.pool.query("ANALYZE jobs")
        let session = jobs.makeClaimSession(name: "claims", logger: testLogger)
        try await session.query(
            "PREPARE claim_plan(bigint[], int[], text, text, float8) AS " + JobStore.completeAndClaimSQL[10])
        let plan = try await session.query(
            "EXPLAIN EXECUTE claim_plan('{2,4,6}', '{1,1,1}', 'replica-a', 'plan', 30)"
        ).rows.map { try $0.decode("QUERY PLAN", as: String.self) }.joined(separator: "\n")
        XCTAssertTrue(plan.contains("jobs_claim_idx"), "claims walk the claim index:\n\(plan)")
        XCTAssertTrue(plan.contains("jobs_pkey"), "completions probe the primary key:\n\(plan)")
        XCTAssertFalse(plan.contains("jobs_running_idx"), "no walk of the running index:\n\(plan)")
        XCTAssertFalse(plan.contains("Seq Scan on jobs"), "no scan of the whole table:\n\(plan)")
        XCTAssertFalse(plan.contains("Hash Join"), "no hash of the whole table:\n\(plan)")

        // And it claims and completes, fenced, on that session.
        let first = try await jobs.completeAndClaim(
            finished: [], replicaID: "replica-a", queue: "plan", limit: 3, lease: .seconds(30), on: session)
        XCTAssertEqual(first.claimed.count, 3)
        let leases = first.claimed.compactMap(\.lease)
        let second = try await jobs.completeAndClaim(
            finished: leases, replicaID: "replica-a", queue: "plan", limit: 0, lease: .seconds(30), on: session)
        XCTAssertEqual(second.completed, Set(leases.map(\.jobID)))
        XCTAssertTrue(second.claimed.isEmpty)
        let again = try await jobs.completeAndClaim(
            finished: leases, replicaID: "replica-a", queue: "plan", limit: 0, lease: .seconds(30), on: session)
        XCTAssertTrue(again.completed.isEmpty, "a completion is fenced: the second one changes nothing")
        await session.close()
    }
}
