import Foundation
import Store
import TestSupport
import XCTest

final class AdvisoryLockTests: DatabaseTestCase {
    override var databaseMigrates: Bool { false }

    func testTryLockIsExclusiveAndReleasedOnScopeExit() async throws {
        let key = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.merge, text: "acme/orch")
        let other = database.makePool()
        defer { Task { await other.close() } }
        let inner: Bool? = try await database.pool.withTryAdvisoryLock(key) { handle in
            let value1 = await handle.isHeld()
            XCTAssertTrue(value1)
            // A second session cannot take it while it is held…
            let second: Bool? = try await other.withTryAdvisoryLock(key) { _ in true }
            XCTAssertNil(second)
            // …and a different repository's key is independent.
            let unrelated: Bool? = try await other.withTryAdvisoryLock(
                AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.merge, text: "acme/other")
            ) { _ in true }
            XCTAssertEqual(unrelated, true)
            return true
        }
        XCTAssertEqual(inner, true)
        let after: Bool? = try await other.withTryAdvisoryLock(key) { _ in true }
        XCTAssertEqual(after, true)
    }

    func testBlockingLockWaitsForTheHolder() async throws {
        let key = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.merge, key: 99)
        let clock = ContinuousClock()
        let started = clock.now
        let pool = database.pool
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await pool.withAdvisoryLock(key) { _ in
                    try await Task.sleep(for: .milliseconds(400))
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            group.addTask {
                try await pool.withAdvisoryLock(key) { _ in
                    XCTAssertGreaterThanOrEqual(clock.now - started, .milliseconds(390))
                }
            }
            try await group.waitForAll()
        }
    }

    func testLockIsFreedWhenTheHoldingSessionDies() async throws {
        let key = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.leader, key: 5)
        let other = database.makePool()
        defer { Task { await other.close() } }
        _ = try await database.pool.withTryAdvisoryLock(key) { handle in
            let value2 = try await other.withTryAdvisoryLock(key) { _ in true }
            XCTAssertNil(value2)
            try await other.query("SELECT pg_terminate_backend($1)", [handle.backendPID])
            let value3 = await handle.isHeld()
            XCTAssertFalse(value3)
            let taken = try await waitUntil(timeout: .seconds(5)) {
                try await other.withTryAdvisoryLock(key) { _ in true } == true
            }
            XCTAssertTrue(taken)
        }
    }
}
