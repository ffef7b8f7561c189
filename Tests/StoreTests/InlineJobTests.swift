import Foundation
import TestSupport
import XCTest

@testable import Store

/// Inline jobs (docs/architecture.md, "Inline jobs"): claimed by locking their rows in the claim
/// session's open transaction, written once with their outcome, and queued again untouched when
/// the session ends before its commit.
final class InlineJobTests: DatabaseTestCase {
    var jobs: JobStore!

    override func setUp() async throws {
        try await super.setUp()
        jobs = JobStore(pool: database.pool)
        for id in ["replica-a", "replica-b"] {
            try await ReplicaStore(pool: database.pool).register(id: id, name: id, host: "test", pid: 1, role: "worker")
        }
    }

    private func enqueue(_ count: Int, kind: String = "fast") async throws -> [Int64] {
        try await jobs.enqueue(Array(repeating: NewJob(kind: kind, queue: "inline"), count: count)).compactMap { $0 }
    }

    private func claim(
        on session: DedicatedSession, replica: String = "replica-a", held: [JobStore.InlineResult] = [],
        holding: Bool = false, finished: [JobLease] = [], limit: Int = 10
    ) async throws -> JobStore.InlineClaim {
        try await jobs.finishAndClaim(
            held: held, holding: holding, finished: finished, replicaID: replica, queue: "inline", limit: limit,
            lease: .seconds(30), inlineKinds: ["fast"], on: session)
    }

    private func statuses(_ ids: [Int64]) async throws -> [JobStatus] {
        var statuses: [JobStatus] = []
        for id in ids { statuses.append(try await jobs.job(id: id)!.status) }
        return statuses
    }

    func testAHeldBatchIsWrittenOnceWithItsOutcomesInTheCommitThatClaimsTheNext() async throws {
        let ids = try await enqueue(5)
        let session = jobs.makeClaimSession(name: "claims a", logger: testLogger)
        let other = jobs.makeClaimSession(name: "claims b", logger: testLogger)
        defer {
            Task {
                await session.close(); await other.close()
            }
        }

        let first = try await claim(on: session, limit: 3)
        XCTAssertTrue(first.isHeld)
        XCTAssertEqual(first.claimed.map(\.id), Array(ids.prefix(3)))
        XCTAssertEqual(first.claimed.map(\.attempt), [1, 1, 1], "the attempt they will be written with")
        // Held, not written: still queued for everyone else, and skipped by every other claim.
        let before = try await statuses(ids)
        XCTAssertEqual(before, Array(repeating: .queued, count: 5))
        let second = try await claim(on: other, replica: "replica-b")
        XCTAssertEqual(second.claimed.map(\.id), Array(ids.suffix(2)), "another claim skips the held rows")
        XCTAssertTrue(second.isHeld)
        _ = try await claim(
            on: other, replica: "replica-b", held: second.claimed.map { .init(job: $0, outcome: .completed) },
            holding: true, limit: 0)

        let outcomes = [
            JobStore.InlineResult(job: first.claimed[0], outcome: .completed),
            JobStore.InlineResult(job: first.claimed[1], outcome: .retry(after: .seconds(60), error: "boom")),
            JobStore.InlineResult(job: first.claimed[2], outcome: .failed(error: "no")),
        ]
        let next = try await claim(on: session, held: outcomes, holding: true)
        XCTAssertEqual(next.written, Set(ids.prefix(3)))
        XCTAssertTrue(next.claimed.isEmpty, "the others were taken (and written) by replica-b")
        XCTAssertFalse(next.isHeld)

        let done = try await jobs.job(id: ids[0])!
        XCTAssertEqual(done.status, .completed)
        XCTAssertEqual(done.attempt, 1)
        XCTAssertEqual(done.lockedBy, "replica-a")
        XCTAssertNotNil(done.claimedAt)
        XCTAssertNotNil(done.finishedAt)
        XCTAssertGreaterThanOrEqual(done.finishedAt!, done.claimedAt!)
        let retried = try await jobs.job(id: ids[1])!
        XCTAssertEqual(retried.status, .queued)
        XCTAssertEqual(retried.attempt, 1, "a failed inline attempt is counted")
        XCTAssertEqual(retried.lastError, "boom")
        XCTAssertGreaterThan(retried.runAt, Date().addingTimeInterval(30))
        let failed = try await jobs.job(id: ids[2])!
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.lastError, "no")
        // One row version per inline job: written by its outcome only.
        let written = try await database.pool.query(
            "SELECT count(*) AS n FROM jobs WHERE id = ANY($1::bigint[]) AND status = 'completed'",
            [PostgresArray(ids.suffix(2))]
        ).first!.decode("n", as: Int.self)
        XCTAssertEqual(written, 2, "replica-b's held batch was committed by its next call")

        // Written once: the same outcomes again find nothing held.
        let again = try await claim(on: session, held: outcomes, holding: false, limit: 0)
        XCTAssertTrue(again.written.isEmpty)
    }

    func testABatchWithALeasedKindIsLeasedAndCommittedAtOnce() async throws {
        let fast = try await enqueue(1)
        let slow = try await enqueue(1, kind: "slow")
        let session = jobs.makeClaimSession(name: "claims", logger: testLogger)
        defer { Task { await session.close() } }
        let result = try await claim(on: session)
        XCTAssertFalse(result.isHeld)
        XCTAssertEqual(Set(result.claimed.map(\.id)), Set(fast + slow))
        for id in fast + slow {
            let job = try await jobs.job(id: id)!
            XCTAssertEqual(job.status, .running, "leased and committed: visible to everyone")
            XCTAssertEqual(job.attempt, 1)
            XCTAssertEqual(job.lockedBy, "replica-a")
        }
        // And completed, fenced, by the next round trip.
        let leases = result.claimed.compactMap(\.lease)
        let next = try await claim(on: session, finished: leases, limit: 0)
        XCTAssertEqual(next.completed, Set(fast + slow))
        let after = try await statuses(fast + slow)
        XCTAssertEqual(after, [.completed, .completed])
    }

    func testASessionEndedBeforeItsCommitQueuesTheHeldJobsAgainUntouched() async throws {
        let ids = try await enqueue(3)
        let session = jobs.makeClaimSession(name: "claims", logger: testLogger)
        defer { Task { await session.close() } }
        let held = try await claim(on: session)
        XCTAssertTrue(held.isHeld)
        // The replica dies (its connection closes) before the commit.
        session.discard()
        let other = jobs.makeClaimSession(name: "claims b", logger: testLogger)
        defer { Task { await other.close() } }
        let again = try await claim(on: other, replica: "replica-b")
        XCTAssertEqual(again.claimed.map(\.id), ids, "queued again at once")
        XCTAssertEqual(again.claimed.map(\.attempt), [1, 1, 1], "untouched: no attempt was written")
        let written = try await claim(
            on: other, replica: "replica-b", held: again.claimed.map { .init(job: $0, outcome: .completed) },
            holding: true, limit: 0)
        XCTAssertEqual(written.written, Set(ids))
        // The first session's outcomes can no longer land: it holds nothing.
        let stale = try await claim(
            on: session, held: held.claimed.map { .init(job: $0, outcome: .completed) }, holding: true, limit: 0)
        XCTAssertTrue(stale.written.isEmpty)
        for id in ids {
            let job = try await jobs.job(id: id)!
            XCTAssertEqual(job.lockedBy, "replica-b")
            XCTAssertEqual(job.attempt, 1)
        }
    }

    func testAHolderPausedPastItsHoldLimitIsEndedByTheServerAndItsOutcomesNeverCommit() async throws {
        let ids = try await enqueue(2)
        let session = jobs.makeClaimSession(name: "claims", holdLimit: .seconds(1), logger: testLogger)
        defer { Task { await session.close() } }
        let held = try await claim(on: session)
        XCTAssertTrue(held.isHeld)
        // Paused: nothing is sent while the server's idle-in-transaction timeout runs out.
        let other = jobs.makeClaimSession(name: "claims b", logger: testLogger)
        defer { Task { await other.close() } }
        var taken: JobStore.InlineClaim?
        let freed = try await waitUntil(timeout: .seconds(10)) {
            let result = try await self.claim(on: other, replica: "replica-b")
            if result.claimed.isEmpty { return false }
            taken = result
            return true
        }
        XCTAssertTrue(freed, "the server ended the paused holder's session and its jobs became claimable")
        XCTAssertEqual(taken?.claimed.map(\.id), ids)
        // Resumed: its commit fails, nothing of it is written.
        do {
            _ = try await claim(
                on: session, held: held.claimed.map { .init(job: $0, outcome: .completed) }, holding: true,
                limit: 0)
            XCTFail("the ended session's commit must fail")
        } catch {}
        let stillHeld = try await statuses(ids)
        XCTAssertEqual(stillHeld, [.queued, .queued], "held by replica-b, not written by replica-a")
        _ = try await claim(
            on: other, replica: "replica-b", held: taken!.claimed.map { .init(job: $0, outcome: .completed) },
            holding: true, limit: 0)
        for id in ids {
            let job = try await jobs.job(id: id)!
            XCTAssertEqual(job.status, .completed)
            XCTAssertEqual(job.lockedBy, "replica-b")
        }
    }
}
