import Foundation
import Store
import TestSupport
import XCTest

/// Several real `orchestrator` processes on one database.
final class MultiReplicaTests: DatabaseTestCase {
    var processes: [OrchestratorProcess] = []
    var jobs: JobStore!

    override var databaseMaxConnections: Int { 12 }

    override func setUp() async throws {
        try await super.setUp()
        jobs = JobStore(pool: database.pool)
        try await DiagnosticStore(pool: database.pool).prepare()
    }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(processes, testFailed: testRun?.hasSucceeded == false)
        processes = []
        try await super.tearDown()
    }

    func start(_ name: String, _ environment: [String: String] = [:]) throws -> OrchestratorProcess {
        let process = try OrchestratorProcess(name: name, databaseURL: database.url, environment: environment)
        processes.append(process)
        return process
    }

    private func liveReplicaIDs(named name: String) async throws -> [String] {
        try await database.pool.query(
            "SELECT id FROM replicas WHERE name = $1 AND stopped_at IS NULL ORDER BY started_at", [name]
        ).rows.map { try $0.decode("id") }
    }

    private func waitForReplica(_ name: String, count: Int = 1) async throws -> String {
        let registered = try await waitUntil(timeout: .seconds(30)) {
            try await liveReplicaIDs(named: name).count >= count
        }
        XCTAssertTrue(registered, "replica \(name) registered")
        return try await liveReplicaIDs(named: name).last ?? ""
    }

    private func leader() async throws -> String? {
        try await database.pool.query("SELECT id FROM replicas WHERE leader_since IS NOT NULL AND stopped_at IS NULL")
            .first?.decode("id")
    }

    func testTwoProcessesAndManyClaimersRunTenThousandJobsExactlyOnce() async throws {
        let total = 10_000
        _ = try start("alpha", ["ORCH_MAX_CONCURRENCY": "16"])
        _ = try start("beta", ["ORCH_MAX_CONCURRENCY": "16"])
        _ = try await waitForReplica("alpha")
        _ = try await waitForReplica("beta")
        for _ in 0..<(total / 1000) {
            try await jobs.enqueue(
                Array(repeating: NewJob(kind: "diag.record", payload: JSONB(text: "{}")), count: 1000))
        }
        // This test process claims too, through four more concurrent claimers of its own.
        let diagnostics = DiagnosticStore(pool: database.pool)
        let replicas = ReplicaStore(pool: database.pool)
        try await replicas.register(id: "in-test", name: "in-test", host: "test", pid: 0, role: "worker")
        let store = jobs!
        let statistics = QueueStatistics(pool: database.pool)
        let local = try await withThrowingTaskGroup(of: Int?.self) { group in
            // Like any replica, the test's claimers must heartbeat, or the leader rightly rescues their jobs.
            group.addTask {
                while !Task.isCancelled {
                    _ = try? await store.heartbeat(replicaID: "in-test", lease: .seconds(60))
                    try? await Task.sleep(for: .milliseconds(500))
                }
                return nil
            }
            for _ in 0..<4 {
                group.addTask {
                    var done = 0
                    while true {
                        let batch = try await store.claim(
                            queues: ["default"], replicaID: "in-test", limit: 5, lease: .seconds(60))
                        if batch.isEmpty {
                            if try await statistics.unfinished(queue: "default") == 0 { return done }
                            try await Task.sleep(for: .milliseconds(20))
                            continue
                        }
                        for job in batch {
                            try await diagnostics.recordExecution(
                                jobID: job.id, attempt: job.attempt, replicaID: "in-test", startedAt: Date())
                        }
                        done += try await store.complete(batch.compactMap(\.lease)).count
                    }
                }
            }
            var sum = 0
            var finishedClaimers = 0
            while finishedClaimers < 4, let result = try await group.next() {
                if let result {
                    sum += result
                    finishedClaimers += 1
                }
            }
            group.cancelAll()
            return sum
        }
        let finished = try await waitUntil(timeout: .seconds(120)) {
            try await jobs.countsByStatus()[.completed] == total
        }
        XCTAssertTrue(finished)
        let row = try await database.pool.query(
            """
            SELECT count(*) AS executions, count(DISTINCT job_id) AS jobs, count(DISTINCT replica_id) AS replicas, max(attempt) AS max_attempt
            FROM diag_executions
            """
        ).first!
        XCTAssertEqual(try row.decode("executions", as: Int.self), total, "every job executed exactly once")
        XCTAssertEqual(try row.decode("jobs", as: Int.self), total)
        XCTAssertEqual(try row.decode("max_attempt", as: Int.self), 1, "no job was ever claimed twice")
        XCTAssertEqual(try row.decode("replicas", as: Int.self), 3, "both processes and the test's claimers took part")
        XCTAssertGreaterThan(local, 0)
    }

    func testJobOfAKilledReplicaIsCompletedByAnotherWithinTwiceTheHeartbeatTTL() async throws {
        // Heartbeat 1 s, TTL 3 s (OrchestratorProcess defaults).
        let victim = try start("victim")
        let victimID = try await waitForReplica("victim")
        let id = try await jobs.enqueue(NewJob(kind: "diag.record", payload: JSONB(text: #"{"ms": 1000}"#)))!
        let running = try await waitUntil(timeout: .seconds(10)) {
            let job = try await jobs.job(id: id)
            return job?.status == .running && job?.lockedBy == victimID
        }
        XCTAssertTrue(running, "the victim claimed the job")
        _ = try start("survivor")
        _ = try await waitForReplica("survivor")
        let clock = ContinuousClock()
        victim.signal(SIGKILL)
        let killedAt = clock.now
        let recovered = try await waitUntil(timeout: .seconds(20)) { try await jobs.job(id: id)?.status == .completed }
        let took = clock.now - killedAt
        XCTAssertTrue(recovered)
        XCTAssertLessThan(took, .seconds(6), "completed \(took) after the kill; 2 × TTL is 6 s")
        let job = try await jobs.job(id: id)!
        XCTAssertEqual(job.attempt, 2)
        XCTAssertNotEqual(job.lockedBy, victimID)
        print("killed replica's job completed elsewhere after \(took)")
        // The reaper recorded its work for GET /queue.
        let rescue = try await MaintenanceStore(pool: database.pool).runs().first { $0.duty == "rescue" }
        XCTAssertGreaterThanOrEqual(rescue?.totalAffected ?? 0, 1, "the rescue is recorded in maintenance_runs")
        XCTAssertNil(rescue?.lastError)
    }

    func testLeaderLockIsFreedWhenItsProcessDiesAndLeadershipMoves() async throws {
        let first = try start("first")
        let firstID = try await waitForReplica("first")
        let value1 = try await waitUntil(timeout: .seconds(10)) { try await leader() == firstID }
        XCTAssertTrue(value1)
        let leaderKey = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.leader, key: 1)
        let heldByFirst = try await database.pool.withTryAdvisoryLock(leaderKey) { _ in true }
        XCTAssertNil(heldByFirst, "the leader holds the session advisory lock")
        first.signal(SIGKILL)
        let value2 = await first.waitForExit(timeout: .seconds(5))
        XCTAssertTrue(value2)
        // Postgres ends the dead process's session and with it the lock.
        let freed = try await waitUntil(timeout: .seconds(5)) {
            try await database.pool.withTryAdvisoryLock(leaderKey) { _ in true } == true
        }
        XCTAssertTrue(freed)
        let second = try start("second")
        let secondID = try await waitForReplica("second")
        let moved = try await waitUntil(timeout: .seconds(10)) { try await leader() == secondID }
        XCTAssertTrue(moved, "leadership moved to the surviving replica")
        _ = second
    }

    func testSIGTERMHandsRunningJobsBackForAnotherReplica() async throws {
        let leaving = try start("leaving", ["ORCH_SHUTDOWN_GRACE": "500ms"])
        let leavingID = try await waitForReplica("leaving")
        let id = try await jobs.enqueue(
            NewJob(kind: "diag.sleep", payload: JSONB(text: #"{"ms": 60000}"#), maxAttempts: 1))!
        let value3 = try await waitUntil(timeout: .seconds(10)) { try await jobs.job(id: id)?.lockedBy == leavingID }
        XCTAssertTrue(value3)
        leaving.signal(SIGTERM)
        let value4 = await leaving.waitForExit(timeout: .seconds(10))
        XCTAssertTrue(value4, "exits soon after its grace period")
        XCTAssertEqual(leaving.process.terminationStatus, 0)
        let job = try await jobs.job(id: id)!
        XCTAssertEqual(job.status, .queued, "handed back, not left running until its lease expires")
        XCTAssertEqual(job.attempt, 0, "a shutdown does not spend an attempt")
        let stopped = try await database.pool.query(
            "SELECT stopped_at IS NOT NULL AS s FROM replicas WHERE id = $1", [leavingID]
        ).first!
        XCTAssertTrue(try stopped.decode("s", as: Bool.self))
        let taker = try start("taker")
        let takerID = try await waitForReplica("taker")
        let value5 = try await waitUntil(timeout: .seconds(10)) { try await jobs.job(id: id)?.lockedBy == takerID }
        XCTAssertTrue(value5)
        _ = taker
    }

    func testStartupRecoveryTakesBackOnlyTheDeadIncarnationsJobs() async throws {
        // Long TTL: neither lease expiry nor the leader's rescue can explain what happens here.
        let slow = ["ORCH_HEARTBEAT_TTL": "120s", "ORCH_HEARTBEAT_INTERVAL": "1s"]
        let original = try start("node", slow)
        let originalID = try await waitForReplica("node")
        let id = try await jobs.enqueue(NewJob(kind: "diag.sleep", payload: JSONB(text: #"{"ms": 60000}"#)))!
        let value6 = try await waitUntil(timeout: .seconds(10)) { try await jobs.job(id: id)?.lockedBy == originalID }
        XCTAssertTrue(value6)
        // A second live process with the same name must not touch the original's job.
        _ = try start("node", slow)
        _ = try await waitForReplica("node", count: 2)
        try await Task.sleep(for: .seconds(1))
        var job = try await jobs.job(id: id)!
        XCTAssertEqual(job.status, .running)
        XCTAssertEqual(job.lockedBy, originalID)
        // The original dies; its restart recovers the job at once.
        original.signal(SIGKILL)
        let value7 = await original.waitForExit(timeout: .seconds(5))
        XCTAssertTrue(value7)
        let clock = ContinuousClock()
        let restartedAt = clock.now
        _ = try start("node", slow)
        let requeued = try await waitUntil(timeout: .seconds(20)) {
            let current = try await jobs.job(id: id)
            return current?.attempt == 2 && current?.lockedBy != originalID
        }
        XCTAssertTrue(requeued, "recovered by the restarted incarnation, long before the 120 s TTL")
        job = try await jobs.job(id: id)!
        XCTAssertEqual(job.lastError.map { $0.contains("previous incarnation") }, true, job.lastError ?? "")
        print("restart recovered the dead incarnation's job after \(clock.now - restartedAt)")
    }
}
