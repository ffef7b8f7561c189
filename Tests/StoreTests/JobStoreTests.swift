import Foundation
import Store
import TestSupport
import XCTest

final class JobStoreTests: DatabaseTestCase {
    var jobs: JobStore!
    var replicas: ReplicaStore!

    override var databaseMaxConnections: Int { 20 }

    override func setUp() async throws {
        try await super.setUp()
        jobs = JobStore(pool: database.pool)
        replicas = ReplicaStore(pool: database.pool)
        for id in ["replica-a", "replica-b"] {
            try await replicas.register(id: id, name: id, host: "test", pid: 1, role: "worker")
        }
    }

    func testDedupeKeyEnqueuedTwiceYieldsOneJob() async throws {
        let job = NewJob(kind: "run_stage", payload: JSONB(text: #"{"task": 1}"#), dedupeKey: "stage:ORCH-1:analysis")
        let first = try await jobs.enqueue(job)
        let second = try await jobs.enqueue(job)
        XCTAssertNotNil(first)
        XCTAssertNil(second)
        // Also when two enqueue in parallel, and within one batch.
        let store = jobs!
        async let x = store.enqueue(NewJob(kind: "k", dedupeKey: "parallel"))
        async let y = store.enqueue(NewJob(kind: "k", dedupeKey: "parallel"))
        let results = try await [x, y]
        XCTAssertEqual(results.compactMap { $0 }.count, 1)
        let batch = try await jobs.enqueue([
            NewJob(kind: "k", dedupeKey: "batch"), NewJob(kind: "k"), NewJob(kind: "k", dedupeKey: "batch"),
        ])
        XCTAssertNotNil(batch[0])
        XCTAssertNotNil(batch[1])
        XCTAssertNil(batch[2])
        let count = try await database.pool.query("SELECT count(*) AS n FROM jobs WHERE dedupe_key IS NOT NULL").first!
            .decode("n", as: Int.self)
        XCTAssertEqual(count, 3)
        // Once finished, the key is free again.
        let claimed = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 10, lease: .seconds(30))
        for job in claimed { _ = try await jobs.complete(job.lease!) }
        let value1 = try await jobs.enqueue(job)
        XCTAssertNotNil(value1)
    }

    func testFencingStopsARescuedReplicaFromOverwritingTheNewOwner() async throws {
        let id = try await jobs.enqueue(NewJob(kind: "k"))!
        let claimedByA = try await jobs.claim(
            queues: ["default"], replicaID: "replica-a", limit: 1, lease: .milliseconds(200))
        XCTAssertEqual(claimedByA.map(\.id), [id])
        let leaseA = claimedByA[0].lease!
        // A stalls; its lease runs out by the database clock and the leader rescues the job.
        try await Task.sleep(for: .milliseconds(300))
        let value2 = try await jobs.rescueAbandoned(staleAfter: .seconds(60))
        XCTAssertEqual(value2, [id])
        let claimedByB = try await jobs.claim(
            queues: ["default"], replicaID: "replica-b", limit: 1, lease: .seconds(30))
        let leaseB = claimedByB[0].lease!
        XCTAssertEqual(leaseB.attempt, 2)
        // A wakes up and tries to finish: every write is refused.
        let value3 = try await jobs.complete(leaseA)
        XCTAssertFalse(value3)
        let value4 = try await jobs.fail(leaseA, error: "late", retryDelay: .zero)
        XCTAssertEqual(value4, .notOwner)
        let value5 = try await jobs.handBack([leaseA], reason: "late").isEmpty
        XCTAssertTrue(value5)
        let value6 = try await jobs.markCancelled(leaseA, reason: "late")
        XCTAssertFalse(value6)
        var row = try await jobs.job(id: id)!
        XCTAssertEqual(row.status, .running)
        XCTAssertEqual(row.lockedBy, "replica-b")
        // B's result stands.
        let value7 = try await jobs.complete(leaseB)
        XCTAssertTrue(value7)
        row = try await jobs.job(id: id)!
        XCTAssertEqual(row.status, .completed)
        XCTAssertEqual(row.attempt, 2)
    }

    func testRetriesBackOffAndStopAtMaxAttemptsKeepingLastError() async throws {
        let id = try await jobs.enqueue(NewJob(kind: "k", maxAttempts: 3))!
        var delays: [Double] = []
        for attempt in 1...3 {
            let due = try await waitUntil(timeout: .seconds(5)) {
                try await database.pool.query("SELECT run_at <= now() AS due FROM jobs WHERE id = $1", [id]).first!
                    .decode("due", as: Bool.self)
            }
            XCTAssertTrue(due)
            let claimed = try await jobs.claim(
                queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30))
            XCTAssertEqual(claimed.first?.attempt, attempt)
            let delay = Duration.milliseconds(100 * (1 << (attempt - 1)))
            let outcome = try await jobs.fail(claimed[0].lease!, error: "boom \(attempt)", retryDelay: delay)
            let row = try await jobs.job(id: id)!
            XCTAssertEqual(row.lastError, "boom \(attempt)")
            if attempt < 3 {
                guard case .retrying(let runAt) = outcome else { return XCTFail("expected a retry, got \(outcome)") }
                delays.append(runAt.timeIntervalSince(row.claimedAt!))
                XCTAssertEqual(row.status, .queued)
                // Not claimable before its backoff.
                let value8 = try await jobs.claim(
                    queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30)
                ).isEmpty
                XCTAssertTrue(value8)
            } else {
                XCTAssertEqual(outcome, .failed)
                XCTAssertEqual(row.status, .failed)
                XCTAssertNotNil(row.finishedAt)
            }
        }
        XCTAssertEqual(delays.count, 2)
        XCTAssertGreaterThan(delays[1], delays[0], "the second retry waits longer than the first")
        let value9 = try await jobs.job(id: id)!.attempt
        XCTAssertEqual(value9, 3)
        // Failed for good: never claimed again.
        let value10 = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30))
            .isEmpty
        XCTAssertTrue(value10)
    }

    func testCompleteAndClaimIsOneFencedStatement() async throws {
        let ids = try await jobs.enqueue(Array(repeating: NewJob(kind: "k"), count: 5)).compactMap { $0 }
        let first = try await jobs.completeAndClaim(
            finished: [], replicaID: "replica-a", queue: "default", limit: 2, lease: .seconds(30))
        XCTAssertEqual(first.completed, [])
        XCTAssertEqual(first.claimed.map(\.id), Array(ids.prefix(2)))
        // One of the two was rescued and re-claimed by B meanwhile: A's completion of it is refused.
        let stolen = first.claimed[1].lease!
        try await database.pool.query(
            "UPDATE jobs SET locked_by = 'replica-b', attempt = attempt + 1 WHERE id = $1", [stolen.jobID])
        let second = try await jobs.completeAndClaim(
            finished: first.claimed.compactMap(\.lease), replicaID: "replica-a", queue: "default", limit: 10,
            lease: .seconds(30))
        XCTAssertEqual(second.completed, [ids[0]])
        XCTAssertEqual(second.claimed.map(\.id), Array(ids.suffix(3)))
        let value1 = try await jobs.job(id: ids[0])!.status
        XCTAssertEqual(value1, .completed)
        let value2 = try await jobs.job(id: ids[1])!.lockedBy
        XCTAssertEqual(value2, "replica-b")
        // Nothing left: completions alone still go through.
        let third = try await jobs.completeAndClaim(
            finished: second.claimed.compactMap(\.lease), replicaID: "replica-a", queue: "default", limit: 10,
            lease: .seconds(30))
        XCTAssertEqual(third.completed, Set(ids.suffix(3)))
        XCTAssertTrue(third.claimed.isEmpty)
    }

    func testNonRetryableFailureIsFinalAtOnce() async throws {
        let id = try await jobs.enqueue(NewJob(kind: "k", maxAttempts: 5))!
        let claimed = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30))
        let value11 = try await jobs.fail(
            claimed[0].lease!, error: "bad payload", retryDelay: .seconds(1), retryable: false)
        XCTAssertEqual(value11, .failed)
        let value12 = try await jobs.job(id: id)!.status
        XCTAssertEqual(value12, .failed)
    }

    func testConcurrentClaimersNeverShareAJob() async throws {
        let total = 2000
        var remaining = total
        while remaining > 0 {
            try await jobs.enqueue(Array(repeating: NewJob(kind: "k"), count: min(500, remaining)))
            remaining -= 500
        }
        let pools = (0..<8).map { _ in database.makePool(maxConnections: 2) }
        let claims = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for (index, pool) in pools.enumerated() {
                group.addTask {
                    let store = JobStore(pool: pool)
                    var mine: [Int64] = []
                    while true {
                        let batch = try await store.claim(
                            queues: ["default"], replicaID: index % 2 == 0 ? "replica-a" : "replica-b", limit: 7,
                            lease: .seconds(60))
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.id)
                        try await store.complete(batch.compactMap(\.lease))
                    }
                }
            }
            var all: [Int64] = []
            for try await ids in group { all += ids }
            return all
        }
        for pool in pools { await pool.close() }
        XCTAssertEqual(claims.count, total, "each job claimed exactly once")
        XCTAssertEqual(Set(claims).count, total)
        let counts = try await jobs.countsByStatus()
        XCTAssertEqual(counts[.completed], total)
        let value13 = try await database.pool.query("SELECT max(attempt) AS m FROM jobs").first!.decode(
            "m", as: Int.self)
        XCTAssertEqual(value13, 1)
    }

    func testCancelQueuedInPlaceAndRunningBySignal() async throws {
        let queued = try await jobs.enqueue(NewJob(kind: "k", runAt: Date().addingTimeInterval(3600)))!
        let value14 = try await jobs.cancel(jobID: queued)
        XCTAssertEqual(value14, .cancelled)
        let value15 = try await jobs.job(id: queued)!.status
        XCTAssertEqual(value15, .cancelled)
        let value16 = try await jobs.cancel(jobID: queued)
        XCTAssertEqual(value16, .alreadyFinished)
        let value17 = try await jobs.cancel(jobID: 999_999)
        XCTAssertEqual(value17, .notFound)

        let running = try await jobs.enqueue(NewJob(kind: "k"))!
        let lease = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30))[0]
            .lease!
        let listener = Listener(pool: database.pool, channels: [.cancel], logger: testLogger)
        var events = listener.events().makeAsyncIterator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await listener.run() }
            _ = await events.next()  // .reconnected
            let value18 = try await jobs.cancel(jobID: running)
            XCTAssertEqual(value18, .signalled)
            let event = await events.next()
            XCTAssertEqual(event, .notification(channel: .cancel, payload: String(running)))
            group.cancelAll()
        }
        // The heartbeat also reports it, for an owner that missed the notification.
        let beat = try await jobs.heartbeat(replicaID: "replica-a", lease: .seconds(30))
        XCTAssertTrue(beat.replicaKnown)
        XCTAssertEqual(beat.cancelRequested, [running])
        let value19 = try await jobs.markCancelled(lease, reason: "stopped")
        XCTAssertTrue(value19)
        let value20 = try await jobs.job(id: running)!.status
        XCTAssertEqual(value20, .cancelled)
    }

    func testHeartbeatExtendsLeasesSoLongJobsAreNotRescued() async throws {
        let id = try await jobs.enqueue(NewJob(kind: "k"))!
        _ = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 1, lease: .milliseconds(300))
        for _ in 0..<4 {
            try await Task.sleep(for: .milliseconds(150))
            _ = try await jobs.heartbeat(replicaID: "replica-a", lease: .milliseconds(300))
            let value21 = try await jobs.rescueAbandoned(staleAfter: .seconds(10)).isEmpty
            XCTAssertTrue(value21)
        }
        let value22 = try await jobs.job(id: id)!.status
        XCTAssertEqual(value22, .running)
        // A heartbeat for an unknown replica says so (it must register again).
        let value23 = try await jobs.heartbeat(replicaID: "ghost", lease: .seconds(1)).replicaKnown
        XCTAssertFalse(value23)
    }

    func testStaleReplicaJobsAreRescuedAndStartupRecoveryLeavesLiveReplicasAlone() async throws {
        try await replicas.register(id: "old-incarnation", name: "node-1", host: "h1", pid: 111, role: "all")
        try await replicas.register(id: "live-sibling", name: "node-1", host: "h1", pid: 222, role: "all")
        let a = try await jobs.enqueue(NewJob(kind: "k"))!
        _ = try await jobs.claim(queues: ["default"], replicaID: "old-incarnation", limit: 1, lease: .seconds(600))
        let b = try await jobs.enqueue(NewJob(kind: "k"))!
        _ = try await jobs.claim(queues: ["default"], replicaID: "live-sibling", limit: 1, lease: .seconds(600))
        // The restarted process (pid 333) knows pid 111 is gone and 222 is alive.
        let recovered = try await replicas.recoverPreviousIncarnations(
            id: "new-incarnation", name: "node-1", host: "h1", staleAfter: .seconds(60), isDead: { $0 == 111 })
        XCTAssertEqual(recovered, [a])
        let value24 = try await jobs.job(id: a)!.status
        XCTAssertEqual(value24, .queued)
        let value25 = try await jobs.job(id: b)!.status
        XCTAssertEqual(value25, .running, "a live replica's job is never touched")
        // Once the sibling stops heartbeating (database clock), the leader's rescue frees its job.
        try await database.pool.query(
            "UPDATE replicas SET heartbeat_at = now() - interval '1 minute' WHERE id = 'live-sibling'")
        let value26 = try await jobs.rescueAbandoned(staleAfter: .seconds(30))
        XCTAssertEqual(value26, [b])
    }

    func testHandBackAtShutdownDoesNotSpendAnAttempt() async throws {
        let id = try await jobs.enqueue(NewJob(kind: "k", maxAttempts: 1))!
        let lease = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30))[0]
            .lease!
        let value27 = try await jobs.handBack([lease], reason: "shutdown")
        XCTAssertEqual(value27, [id])
        let row = try await jobs.job(id: id)!
        XCTAssertEqual(row.status, .queued)
        XCTAssertEqual(row.attempt, 0)
        let value28 = try await jobs.claim(queues: ["default"], replicaID: "replica-b", limit: 1, lease: .seconds(30))
            .first?.id
        XCTAssertEqual(value28, id)
    }

    func testPruneDeletesOnlyOldFinishedJobs() async throws {
        let ids = try await jobs.enqueue(Array(repeating: NewJob(kind: "k"), count: 30)).compactMap { $0 }
        let claimed = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 20, lease: .seconds(30))
        try await jobs.complete(claimed.prefix(15).compactMap(\.lease))
        try await database.pool.query(
            "UPDATE jobs SET finished_at = now() - interval '2 days' WHERE status = 'completed' AND id <= $1", [ids[9]])
        let value29 = try await jobs.prune(retention: .seconds(86400), batchSize: 3)
        XCTAssertEqual(value29, 10)
        let counts = try await jobs.countsByStatus()
        XCTAssertEqual(counts[.completed], 5)
        XCTAssertEqual(counts[.running], 5)
        XCTAssertEqual(counts[.queued], 10)
    }
}
