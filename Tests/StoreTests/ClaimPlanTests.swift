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

    /// With the statistics of an empty table (a new deployment, or a drained queue analyzed)
    /// and a backlog that arrived since: the planner believes `jobs_claim_idx` nearly empty, and a
    /// statement saying `status = 'queued'` would walk all of it per batch (the drain benchmark
    /// fell from 33,000 to 3,900 jobs/s that way).
    func testTheInlineClaimAndItsOutcomesWalkTheClaimIndexAndThePrimaryKey() async throws {
        try await ReplicaStore(pool: database.pool).register(
            id: "replica-a", name: "replica-a", host: "test", pid: 1, role: "worker")
        try await database.pool.query("ANALYZE jobs")
        try await database.pool.query(
            """
            INSERT INTO jobs (kind, queue, status, finished_at)
            SELECT 'bench.noop', 'plan', CASE WHEN g % 2 = 0 THEN 'queued' ELSE 'completed' END,
                   CASE WHEN g % 2 = 0 THEN NULL ELSE now() END
            FROM generate_series(1, 20000) g
            """)
        let session = JobStore(pool: database.pool).makeClaimSession(name: "claims", logger: testLogger)
        // The generic plan a claim session keeps for `sql`, executed with `arguments`.
        func plan(_ name: String, _ types: String, _ sql: String, _ arguments: String) async throws -> String {
            try await session.query("PREPARE \(name)(\(types)) AS \(sql)")
            return try await session.query("EXPLAIN EXECUTE \(name)(\(arguments))")
                .rows.map { try $0.decode("QUERY PLAN", as: String.self) }.joined(separator: "\n")
        }
        let claim = try await plan("inline_plan", "text, text", JobStore.inlineClaimSQL[10], "'replica-a', 'plan'")
        XCTAssertTrue(claim.contains("jobs_claim_idx"), "the inline claim walks the claim index:\n\(claim)")
        XCTAssertFalse(claim.contains("Seq Scan on jobs"), "no scan of the whole table:\n\(claim)")
        XCTAssertFalse(claim.contains("Hash Join"), "no hash of the whole table:\n\(claim)")
        let outcomes = try await plan(
            "outcome_plan", "text, bigint[], int[], text[], float8[], timestamptz[], text[], int[]",
            JobStore.inlineOutcomesSQL,
            "'replica-a', '{2,4}', '{1,1}', '{completed,completed}', '{NULL,NULL}', '{NULL,NULL}', '{NULL,NULL}', '{0,0}'"
        )
        let completed = try await plan(
            "completed_plan", "text, bigint[]", JobStore.inlineCompletedSQL, "'replica-a', '{2,4}'")
        let lease = try await plan(
            "lease_plan", "text, bigint[], float8", JobStore.inlineLeaseSQL, "'replica-a', '{2,4}', 30")
        for (what, plan) in [("outcomes", outcomes), ("a batch that all succeeded", completed), ("a lease", lease)] {
            XCTAssertTrue(plan.contains("jobs_pkey"), "\(what): by primary key:\n\(plan)")
            XCTAssertFalse(plan.contains("jobs_claim_idx"), "\(what): no walk of the backlog:\n\(plan)")
            XCTAssertFalse(plan.contains("Seq Scan on jobs"), "\(what): no scan of the whole table:\n\(plan)")
        }
        let leased = try await plan(
            "complete_plan", "bigint[], text[], int[]", JobStore.completeSQL, "'{2,4}', '{a,a}', '{1,1}'")
        XCTAssertTrue(leased.contains("jobs_pkey"), "leased completions by primary key:\n\(leased)")
        XCTAssertFalse(leased.contains("jobs_running_idx"), "no walk of the running index:\n\(leased)")
        await session.close()
    }
}
