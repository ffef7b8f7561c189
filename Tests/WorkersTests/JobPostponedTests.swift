import Foundation
import Store
import TestSupport
import XCTest

@testable import Workers

/// A postponement is timed by the database clock: a relative delay is added to the database's
/// `now()`, never to the replica's clock, which may be off.
final class JobPostponedTests: DatabaseTestCase {
    var jobs: JobStore!

    override func setUp() async throws {
        try await super.setUp()
        jobs = JobStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(
            id: "replica-a", name: "replica-a", host: "test", pid: 1, role: "worker")
        // Notes the transaction time of the statement that postpones a job: the database's now().
        try await database.pool.query("CREATE TABLE postpone_clock (job_id bigint, at timestamptz)")
        try await database.pool.query(
            """
            CREATE FUNCTION note_postpone_clock() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.status = 'running' AND NEW.status = 'queued' THEN
                    INSERT INTO postpone_clock VALUES (NEW.id, now());
                END IF;
                RETURN NEW;
            END $$
            """)
        try await database.pool.query(
            "CREATE TRIGGER note_postpone_clock BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION note_postpone_clock()"
        )
    }

    private func claimOne() async throws -> JobLease {
        _ = try await jobs.enqueue(NewJob(kind: "k"))
        let claimed = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30))
        return try XCTUnwrap(claimed.first?.lease)
    }

    func testARelativePostponementIsDueByTheDatabaseClock() async throws {
        let lease = try await claimOne()
        let recorded = try await JobPostponed(after: .seconds(90), reason: "waiting for CI").record(lease, in: jobs)
        XCTAssertTrue(recorded)
        // Exactly the postponing statement's now() + 90 s, to the microsecond: a run_at computed
        // from this process's clock could not match it.
        let row = try await database.pool.query(
            """
            SELECT j.run_at - p.at = interval '90 seconds' AS exact, j.status, j.last_error, j.max_attempts
            FROM jobs j JOIN postpone_clock p ON p.job_id = j.id WHERE j.id = $1
            """, [lease.jobID]
        ).first
        XCTAssertEqual(try row?.decode("exact", as: Bool.self), true)
        XCTAssertEqual(try row?.decode("status", as: String.self), "queued")
        XCTAssertEqual(try row?.decode("last_error", as: String.self), "waiting for CI")
        XCTAssertEqual(try row?.decode("max_attempts", as: Int.self), 6, "no attempt spent")
        // A lease that is no longer ours records nothing.
        let again = try await JobPostponed(after: .seconds(1), reason: "late").record(lease, in: jobs)
        XCTAssertFalse(again)
    }

    func testAnAbsolutePostponementKeepsTheInstantTheDatabaseGave() async throws {
        let lease = try await claimOne()
        let until = try await database.pool.query("SELECT date_trunc('second', now()) + interval '2 minutes' AS at")
            .first!
            .decode("at", as: Date.self)
        let recorded = try await JobPostponed(until: until, reason: "breaker open").record(lease, in: jobs)
        XCTAssertTrue(recorded)
        let job = try await jobs.job(id: lease.jobID)
        XCTAssertEqual(job?.runAt, until)
    }
}
