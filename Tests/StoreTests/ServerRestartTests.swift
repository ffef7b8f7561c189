import Foundation
import Store
import TestSupport
import XCTest

/// Restarts the throwaway server started by scripts/test.sh (skipped against any other server).
final class ServerRestartTests: DatabaseTestCase {
    override func setUp() async throws {
        guard ProcessInfo.processInfo.environment["ORCH_TEST_PG_DATA"] != nil else {
            throw XCTSkip("ORCH_TEST_PG_DATA not set: the server is not ours to restart")
        }
        try await super.setUp()
    }

    private func restartServer() async throws {
        let script = packageRoot.appendingPathComponent("scripts/lib/pg-restart.sh").path
        let data = ProcessInfo.processInfo.environment["ORCH_TEST_PG_DATA"]!
        // system(), not Foundation.Process: here Process never reported this script as exited
        // (it starts a daemonised postmaster); system() waits for the script alone.
        let status = system("bash '\(script)' '\(data)' </dev/null >/dev/null 2>&1")
        XCTAssertEqual(status, 0, "pg_ctl restart")
    }

    func testPoolAndListenerRecoverFromAServerRestart() async throws {
        let pool = database.makePool(maxConnections: 4)
        defer { Task { await pool.close() } }
        let listener = Listener(pool: pool, channels: [.jobs], logger: testLogger)
        var events = listener.events().makeAsyncIterator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await listener.run() }
            let first = await events.next()
            XCTAssertEqual(first, .reconnected)
            // Warm the pool so it holds idle connections that the restart will kill.
            async let a: Void = pool.withConnection { _ = try await $0.query("SELECT pg_sleep(0.05)") }
            async let b: Void = pool.withConnection { _ = try await $0.query("SELECT pg_sleep(0.05)") }
            _ = try await (a, b)

            try await restartServer()

            // No error reaches the caller: dead idle connections are noticed and replaced.
            let value = try await pool.query("SELECT 42 AS n").first!.decode("n", as: Int.self)
            XCTAssertEqual(value, 42)
            // The listener reconnects by itself, says so, and hears notifications again.
            let again = await events.next()
            XCTAssertEqual(again, .reconnected)
            try await pool.query("SELECT pg_notify('orch_jobs', 'after-restart')")
            let note = await events.next()
            XCTAssertEqual(note, .notification(channel: .jobs, payload: "after-restart"))
            group.cancelAll()
        }
    }

    /// An inline batch held across a server restart: its commit fails, nothing of it is written,
    /// and its jobs are queued as they were, claimable again on a new session.
    func testAnInlineBatchHeldAcrossARestartIsRolledBackUntouched() async throws {
        let jobs = JobStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(
            id: "replica-a", name: "replica-a", host: "test", pid: 1, role: "worker")
        let ids = try await jobs.enqueue(Array(repeating: NewJob(kind: "fast", queue: "inline"), count: 3))
            .compactMap { $0 }
        let session = jobs.makeClaimSession(name: "claims", logger: testLogger)
        defer { Task { await session.close() } }
        func claim(_ held: [JobStore.InlineResult], holding: Bool, limit: Int) async throws -> JobStore.InlineClaim {
            try await jobs.finishAndClaim(
                held: held, holding: holding, finished: [], replicaID: "replica-a", queue: "inline", limit: limit,
                lease: .seconds(30), inlineKinds: ["fast"], on: session)
        }
        let held = try await claim([], holding: false, limit: 10)
        XCTAssertTrue(held.isHeld)
        XCTAssertEqual(held.claimed.map(\.id), ids)

        try await restartServer()

        do {
            _ = try await claim(held.claimed.map { .init(job: $0, outcome: .completed) }, holding: true, limit: 10)
            XCTFail("the commit of a batch held across the restart must fail")
        } catch {}
        // The next call opens a new session; the jobs are there, untouched, and are written once.
        let again = try await claim([], holding: false, limit: 10)
        XCTAssertEqual(again.claimed.map(\.id), ids)
        XCTAssertEqual(again.claimed.map(\.attempt), [1, 1, 1])
        let written = try await claim(
            again.claimed.map { .init(job: $0, outcome: .completed) }, holding: true, limit: 0)
        XCTAssertEqual(written.written, Set(ids))
    }
}
