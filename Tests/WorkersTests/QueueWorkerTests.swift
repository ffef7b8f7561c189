import Foundation
import Logging
import ServiceLifecycle
import Store
import Synchronization
import TestSupport
import Workers
import XCTest

final class QueueWorkerTests: DatabaseTestCase {
    var jobs: JobStore!

    override var databaseMaxConnections: Int { 16 }

    override func setUp() async throws {
        try await super.setUp()
        jobs = JobStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(id: "w1", name: "w1", host: "test", pid: 1, role: "worker")
    }

    private func makeWorker(
        _ registry: JobRegistry, listener: Listener?, poll: Duration = .seconds(10), concurrency: Int = 4,
        grace: Duration = .seconds(5), retryInitial: Duration = .milliseconds(100)
    ) -> QueueWorker {
        QueueWorker(
            configuration: .init(
                replicaID: "w1", queues: ["default"], maxConcurrency: concurrency, batchSize: concurrency,
                pollInterval: poll,
                leaseDuration: .seconds(30), gracePeriod: grace, retryInitial: retryInitial, retryMaximum: .seconds(1)),
            store: jobs, registry: registry, listener: listener, logger: testLogger)
    }

    /// Runs `services` in a group, runs `body`, then shuts the group down gracefully.
    private func withServices(_ services: [any Service], _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [], logger: testLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    private func status(_ id: Int64) async throws -> JobStatus? {
        try await jobs.job(id: id)?.status
    }

    func testIdleWorkerIsWokenByNotifyWithin50Milliseconds() async throws {
        var registry = JobRegistry()
        registry.register("noop") { _ in }
        let listener = Listener(pool: database.pool, logger: testLogger)
        // The backstop poll is 10 s: only NOTIFY can explain a claim within milliseconds.
        let worker = makeWorker(registry, listener: listener, poll: .seconds(10))
        try await withServices([ListenerService(listener: listener), worker]) {
            let connected = await waitUntil(timeout: .seconds(5)) { listener.backendPID != 0 }
            XCTAssertTrue(connected)
            try await Task.sleep(for: .milliseconds(200))  // let the worker's first (empty) claim pass: it is idle now
            var latencies: [Double] = []
            for _ in 0..<5 {
                let id = try await jobs.enqueue(NewJob(kind: "noop"))!
                let done = try await waitUntil(timeout: .seconds(3)) { try await status(id) == .completed }
                XCTAssertTrue(done)
                let row = try await database.pool.query(
                    "SELECT extract(epoch FROM claimed_at - created_at) * 1000 AS ms FROM jobs WHERE id = $1", [id]
                ).first!
                latencies.append(try row.decode("ms"))
                try await Task.sleep(for: .milliseconds(100))
            }
            print("enqueue→claim ms via NOTIFY: \(latencies.map { String(format: "%.2f", $0) })")
            for latency in latencies { XCTAssertLessThan(latency, 50, "claimed \(latency) ms after enqueue") }
        }
    }

    func testWorkerStillWakesAfterItsListenerConnectionIsTerminated() async throws {
        var registry = JobRegistry()
        registry.register("noop") { _ in }
        let listener = Listener(pool: database.pool, logger: testLogger)
        let worker = makeWorker(registry, listener: listener, poll: .seconds(30))
        try await withServices([ListenerService(listener: listener), worker]) {
            let value1 = await waitUntil(timeout: .seconds(5)) { listener.backendPID != 0 }
            XCTAssertTrue(value1)
            let oldPID = listener.backendPID
            try await database.pool.query("SELECT pg_terminate_backend($1)", [oldPID])
            let reconnected = await waitUntil(timeout: .seconds(10)) {
                listener.backendPID != 0 && listener.backendPID != oldPID
            }
            XCTAssertTrue(reconnected)
            let id = try await jobs.enqueue(NewJob(kind: "noop"))!
            let done = try await waitUntil(timeout: .seconds(3)) { try await status(id) == .completed }
            XCTAssertTrue(done, "woken by NOTIFY on the new listening session, long before the 30 s poll")
        }
    }

    func testPollingBackstopFindsJobsWithoutAListener() async throws {
        var registry = JobRegistry()
        registry.register("noop") { _ in }
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(200))
        try await withServices([worker]) {
            let id = try await jobs.enqueue(NewJob(kind: "noop"))!
            let value2 = try await waitUntil(timeout: .seconds(5)) { try await status(id) == .completed }
            XCTAssertTrue(value2)
        }
    }

    func testFailingHandlerIsRetriedWithBackoffUntilMaxAttempts() async throws {
        let calls = Mutex<[Date]>([])
        var registry = JobRegistry()
        registry.register("flaky") { _ in
            calls.withLock { $0.append(Date()) }
            throw TestSetupError("upstream said 503")
        }
        let listener = Listener(pool: database.pool, logger: testLogger)
        let worker = makeWorker(
            registry, listener: listener, poll: .milliseconds(100), retryInitial: .milliseconds(200))
        try await withServices([ListenerService(listener: listener), worker]) {
            let id = try await jobs.enqueue(NewJob(kind: "flaky", maxAttempts: 3))!
            let value3 = try await waitUntil(timeout: .seconds(10)) { try await status(id) == .failed }
            XCTAssertTrue(value3)
            let row = try await jobs.job(id: id)!
            XCTAssertEqual(row.attempt, 3)
            XCTAssertEqual(row.lastError, "upstream said 503")
        }
        let times = calls.withLock { $0 }
        XCTAssertEqual(times.count, 3)
        XCTAssertGreaterThanOrEqual(
            times[1].timeIntervalSince(times[0]), 0.19, "first retry waits at least the initial delay")
    }

    func testPermanentFailureAndUnknownKindAreNotRetried() async throws {
        var registry = JobRegistry()
        registry.register("bad") { _ in throw PermanentJobFailure("payload names no task") }
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(100))
        try await withServices([worker]) {
            let bad = try await jobs.enqueue(NewJob(kind: "bad", maxAttempts: 5))!
            let unknown = try await jobs.enqueue(NewJob(kind: "nobody-handles-this", maxAttempts: 5))!
            let value4 = try await waitUntil(timeout: .seconds(5)) {
                let first = try await status(bad)
                let second = try await status(unknown)
                return first == .failed && second == .failed
            }
            XCTAssertTrue(value4)
            let value5 = try await jobs.job(id: bad)!.attempt
            XCTAssertEqual(value5, 1)
            let value6 = try await jobs.job(id: unknown)!.lastError
            XCTAssertEqual(value6, "no handler registered for job kind 'nobody-handles-this'")
        }
    }

    /// An outbound call that failed for good (Plane or Gitea 401/404, Telegram "chat not found")
    /// fails the job at once; one worth repeating (network, 429, 5xx) is retried.
    func testErrorsThatSayTheyAreNotRetryableAreNotRetried() async throws {
        var registry = JobRegistry()
        registry.register("refused") { _ in
            throw GiteaAPIError(description: "Gitea merge answered 404 not found", isRetryable: false)
        }
        registry.register("overloaded") { _ in
            throw PlaneAPIError(description: "Plane API answered 503", isRetryable: true)
        }
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(100))
        try await withServices([worker]) {
            let refused = try await jobs.enqueue(NewJob(kind: "refused", maxAttempts: 5))!
            let overloaded = try await jobs.enqueue(NewJob(kind: "overloaded", maxAttempts: 2))!
            let settled = try await waitUntil(timeout: .seconds(10)) {
                let first = try await status(refused)
                let second = try await status(overloaded)
                return first == .failed && second == .failed
            }
            XCTAssertTrue(settled)
            let refusedAttempts = try await jobs.job(id: refused)!.attempt
            XCTAssertEqual(refusedAttempts, 1, "not retried")
            let overloadedAttempts = try await jobs.job(id: overloaded)!.attempt
            XCTAssertEqual(overloadedAttempts, 2, "retried until its attempts ran out")
        }
    }

    func testPerKindTimeoutFailsTheAttempt() async throws {
        var registry = JobRegistry()
        registry.register("slow", timeout: .milliseconds(200)) { _ in try await Task.sleep(for: .seconds(30)) }
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(100))
        try await withServices([worker]) {
            let id = try await jobs.enqueue(NewJob(kind: "slow", maxAttempts: 1))!
            let value7 = try await waitUntil(timeout: .seconds(5)) { try await status(id) == .failed }
            XCTAssertTrue(value7)
            let error = try await jobs.job(id: id)!.lastError ?? ""
            XCTAssertTrue(error.contains("timed out"), error)
        }
    }

    func testBoundedConcurrency() async throws {
        let current = Mutex((now: 0, peak: 0))
        var registry = JobRegistry()
        registry.register("busy") { _ in
            current.withLock {
                $0.now += 1; $0.peak = max($0.peak, $0.now)
            }
            try await Task.sleep(for: .milliseconds(50))
            current.withLock { $0.now -= 1 }
        }
        let listener = Listener(pool: database.pool, logger: testLogger)
        let worker = makeWorker(registry, listener: listener, poll: .milliseconds(100), concurrency: 3)
        try await withServices([ListenerService(listener: listener), worker]) {
            try await jobs.enqueue(Array(repeating: NewJob(kind: "busy"), count: 30))
            let value8 = try await waitUntil(timeout: .seconds(10)) {
                try await jobs.countsByStatus()[.completed] == 30
            }
            XCTAssertTrue(value8)
        }
        XCTAssertEqual(current.withLock { $0.peak }, 3)
    }

    func testCancelNotificationStopsARunningJob() async throws {
        let started = Mutex(false)
        var registry = JobRegistry()
        registry.register("long") { _ in
            started.withLock { $0 = true }
            try await Task.sleep(for: .seconds(60))
        }
        let listener = Listener(pool: database.pool, logger: testLogger)
        let worker = makeWorker(registry, listener: listener)
        try await withServices([ListenerService(listener: listener), worker]) {
            let value9 = await waitUntil(timeout: .seconds(5)) { listener.backendPID != 0 }
            XCTAssertTrue(value9)
            let id = try await jobs.enqueue(NewJob(kind: "long"))!
            let value10 = await waitUntil(timeout: .seconds(5)) { started.withLock { $0 } }
            XCTAssertTrue(value10)
            let value11 = try await jobs.cancel(jobID: id)
            XCTAssertEqual(value11, .signalled)
            let value12 = try await waitUntil(timeout: .seconds(3)) { try await status(id) == .cancelled }
            XCTAssertTrue(value12)
        }
    }

    func testGracefulShutdownHandsUnfinishedJobsBackAtOnce() async throws {
        let started = Mutex(0)
        var registry = JobRegistry()
        registry.register("long") { _ in
            started.withLock { $0 += 1 }
            try await Task.sleep(for: .seconds(60))
        }
        registry.register("short") { _ in try await Task.sleep(for: .milliseconds(100)) }
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(100), grace: .milliseconds(500))
        let long = try await jobs.enqueue(NewJob(kind: "long", maxAttempts: 1))!
        let short = try await jobs.enqueue(NewJob(kind: "short"))!
        try await withServices([worker]) {
            let value13 = await waitUntil(timeout: .seconds(5)) { started.withLock { $0 } == 1 }
            XCTAssertTrue(value13)
            try await Task.sleep(for: .milliseconds(50))
        }
        // The short job finished within the grace period; the long one went back to the queue
        // without spending its only attempt, ready for another replica.
        let value14 = try await status(short)
        XCTAssertEqual(value14, .completed)
        let row = try await jobs.job(id: long)!
        XCTAssertEqual(row.status, .queued)
        XCTAssertEqual(row.attempt, 0)
        XCTAssertNil(row.lockedBy)
        let next = try await jobs.claim(queues: ["default"], replicaID: "w1", limit: 1, lease: .seconds(5))
        XCTAssertEqual(next.first?.id, long)
    }

    private func heartbeat(for worker: QueueWorker) -> ReplicaHeartbeat {
        ReplicaHeartbeat(
            identity: worker.identity, interval: .milliseconds(200), lease: .seconds(30),
            session: DedicatedSession(
                configuration: database.pool.configuration, name: "heartbeat", timeout: .seconds(2), logger: testLogger),
            replicas: ReplicaStore(pool: database.pool), worker: worker, logger: testLogger)
    }

    /// What a `long` job (a minute's sleep) went through.
    private final class LongJob: Sendable {
        let started = Atomic<Bool>(false)
        let cancelled = Atomic<Bool>(false)

        var registry: JobRegistry {
            var registry = JobRegistry()
            registry.register("long") { _ in
                self.started.store(true, ordering: .relaxed)
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch {
                    self.cancelled.store(true, ordering: .relaxed)
                    throw error
                }
            }
            return registry
        }
    }

    func testAHandlerWhoseJobWasTakenElsewhereIsStoppedAtTheNextHeartbeatAndWritesNothing() async throws {
        let long = LongJob()
        let registry = long.registry
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(100))
        try await withServices([worker, heartbeat(for: worker)]) {
            let id = try await jobs.enqueue(NewJob(kind: "long"))!
            let running = await waitUntil(timeout: .seconds(5)) { long.started.load(ordering: .relaxed) }
            XCTAssertTrue(running)
            // The leader rescued it and another replica claimed it (attempt 2), as after a pause.
            try await database.pool.query("UPDATE jobs SET locked_by = 'w2', attempt = attempt + 1 WHERE id = $1", [id])
            let stopped = await waitUntil(timeout: .seconds(3)) { long.cancelled.load(ordering: .relaxed) }
            XCTAssertTrue(stopped, "the handler was cancelled once the heartbeat found the job lost")
            try await Task.sleep(for: .milliseconds(300))
            let job = try await jobs.job(id: id)
            XCTAssertEqual(job?.status, .running)
            XCTAssertEqual(job?.lockedBy, "w2", "the stale owner wrote nothing about the new owner's job")
            XCTAssertEqual(job?.attempt, 2)
        }
    }

    /// A handler that commits its own outcome (its job row completed in that transaction, as a
    /// stage outcome does) goes on with its after-work (deleting a merged branch). A heartbeat that
    /// ran into the outcome's row lock and went on after the commit finds the job finished by this
    /// replica: that is its own doing, not a lost lease, and must not cancel the handler.
    func testAHandlerThatCompletedItsOwnJobIsNotStoppedByAHeartbeatThatWaitedForItsCommit() async throws {
        let sawHeartbeatWait = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)
        let cancelled = Atomic<Bool>(false)
        let pool = database.pool
        let observer = database.makePool(maxConnections: 1)
        var registry = JobRegistry()
        registry.register("self-completing") { context in
            try await pool.withTransaction { connection in
                try await connection.query(
                    "UPDATE jobs SET status = 'completed', finished_at = now(), lease_expires_at = NULL WHERE id = $1",
                    [context.job.id])
                // Holds the row until the next heartbeat waits for it (every 200 ms).
                let waiting = await waitUntil(timeout: .seconds(5)) {
                    let row = try? await observer.query(
                        """
                        SELECT count(*) AS n FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%heartbeat_at%'
                        """
                    ).first
                    return ((try? row?.decode("n", as: Int.self)) ?? 0) > 0
                }
                sawHeartbeatWait.store(waiting, ordering: .relaxed)
            }
            context.completion.markCompleted()
            do {
                try await Task.sleep(for: .seconds(1))
                finished.store(true, ordering: .relaxed)
            } catch {
                cancelled.store(true, ordering: .relaxed)
                throw error
            }
        }
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(100))
        try await withServices([worker, heartbeat(for: worker)]) {
            let id = try await jobs.enqueue(NewJob(kind: "self-completing"))!
            let done = await waitUntil(timeout: .seconds(15)) {
                finished.load(ordering: .relaxed) || cancelled.load(ordering: .relaxed)
            }
            XCTAssertTrue(done)
            XCTAssertTrue(sawHeartbeatWait.load(ordering: .relaxed), "the heartbeat waited for the outcome's commit")
            XCTAssertFalse(cancelled.load(ordering: .relaxed), "the heartbeat cancelled a handler after its own commit")
            let status = try await status(id)
            XCTAssertEqual(status, .completed)
        }
        await observer.close()
    }

    func testAReplicaMarkedStoppedAbandonsItsJobsAndRegistersAgainUnderANewID() async throws {
        let long = LongJob()
        let registry = long.registry
        let worker = makeWorker(registry, listener: nil, poll: .milliseconds(100))
        let replicas = ReplicaStore(pool: database.pool)
        try await withServices([worker, heartbeat(for: worker)]) {
            let id = try await jobs.enqueue(NewJob(kind: "long"))!
            let running = try await waitUntil(timeout: .seconds(5)) { try await status(id) == .running }
            XCTAssertTrue(running)
            // The leader gave up on this replica (as after a pause past the TTL).
            try await database.pool.query("UPDATE replicas SET stopped_at = now() WHERE id = 'w1'")
            let renewed = await waitUntil(timeout: .seconds(3)) { worker.identity.id != "w1" }
            XCTAssertTrue(renewed)
            let abandoned = await waitUntil(timeout: .seconds(3)) { long.cancelled.load(ordering: .relaxed) }
            XCTAssertTrue(abandoned, "its handler was stopped")
            // Registering again and the first beat under the new id take a moment on a busy machine.
            let registered = try await waitUntil(timeout: .seconds(5)) {
                try await replicas.live().map(\.id).contains(worker.identity.id)
            }
            let live = try await replicas.live().map(\.id)
            XCTAssertTrue(registered, "registered under \(worker.identity.id): \(live)")
            XCTAssertFalse(live.contains("w1"))
            // Its job went back to the queue (still held, so handed back) and the worker, now
            // under its new id, claims it again.
            let reclaimed = try await waitUntil(timeout: .seconds(5)) {
                let job = try await jobs.job(id: id)
                return job?.status == .running && job?.lockedBy == worker.identity.id
            }
            XCTAssertTrue(reclaimed)
        }
    }
}
