import Foundation
import Synchronization
import TestSupport
import XCTest

@testable import Store

/// The notifications cursor over `task_events`.
final class NotificationStoreTests: DatabaseTestCase {
    private func createTask(_ workItem: String) async throws -> TaskRecord {
        try await TaskStore(pool: database.pool).upsert(
            workItem: workItem, repo: "acme/orch", title: "Title of \(workItem)", description: "", labels: [],
            track: .full,
            auto: false, planeIssueID: nil, planeProjectID: nil, planeState: nil
        ).task
    }

    /// Event ids are taken before commit, so a later id can commit first. The cursor must not pass
    /// over the earlier one while its transaction is still open: that event would never be sent.
    func testAnEventCommittedAfterALaterOneIsStillNotified() async throws {
        let pool: ConnectionPool = database.pool
        let tasks = TaskStore(pool: pool)
        let notifications = NotificationStore(pool: database.pool)
        let first = try await createTask("ORCH-1")
        _ = try await createTask("ORCH-2")
        try await notifications.enqueueNew(channels: ["telegram"])  // the cursor starts here

        let (inserted, insertedSignal) = AsyncStream.makeStream(of: Void.self)
        let (release, releaseSignal) = AsyncStream.makeStream(of: Void.self)
        let slow = Task {
            try await pool.withTransaction { connection in
                try await TaskStore.recordEvent(
                    taskID: first.id, event: "approve", from: first.state, to: first.state, reason: "slow writer",
                    actor: "test", on: connection)
                insertedSignal.yield()
                for await _ in release { break }
            }
        }
        for await _ in inserted { break }
        // A later event commits while the slow one is still open.
        try await tasks.apply(.cancel, workItem: "ORCH-2", actor: "test", reason: "fast writer")

        let done = Flag()
        let pass = Task {
            defer { done.set() }
            return try await notifications.enqueueNew(channels: ["telegram"])
        }
        // Either the pass finished (reading past the open event) or it waits for the writer.
        let settled = try await waitUntil(timeout: .seconds(10)) {
            if done.value { return true }
            let waiting = try await database.pool.query(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).rows.first?.decode("n", as: Int.self)
            return (waiting ?? 0) > 0
        }
        XCTAssertTrue(settled)
        releaseSignal.yield()
        try await slow.value
        _ = try await pass.value
        try await notifications.enqueueNew(channels: ["telegram"])

        let reasons = try await database.pool.query(
            "SELECT payload->>'reason' AS reason FROM jobs WHERE kind = 'notify.telegram' ORDER BY id"
        ).rows
            .map { try $0.decode("reason", as: String.self) }
        XCTAssertEqual(Set(reasons), ["slow writer", "fast writer"], "both events notified")
    }
}

/// A flag set from one task and read from another.
private final class Flag: Sendable {
    private let state = Mutex(false)

    func set() { state.withLock { $0 = true } }
    var value: Bool { state.withLock { $0 } }
}
