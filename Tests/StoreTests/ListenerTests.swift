import Foundation
import Store
import TestSupport
import XCTest

final class ListenerTests: DatabaseTestCase {
    override var databaseMigrates: Bool { false }

    func testDeliversNotificationsAndReconnectsAfterTerminate() async throws {
        let listener = Listener(pool: database.pool, channels: [.jobs, .cancel], logger: testLogger)
        let events = listener.events()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await listener.run() }
            var iterator = events.makeAsyncIterator()
            let first = await iterator.next()
            XCTAssertEqual(first, .reconnected)
            try await database.pool.query("SELECT pg_notify('orch_jobs', $1)", ["default"])
            try await database.pool.query("SELECT pg_notify('orch_cancel', $1)", ["17"])
            let second = await iterator.next()
            let third = await iterator.next()
            XCTAssertEqual(second, .notification(channel: .jobs, payload: "default"))
            XCTAssertEqual(third, .notification(channel: .cancel, payload: "17"))

            // Kill the listening session from the server side: the listener reconnects and says so.
            let oldPID = listener.backendPID
            XCTAssertNotEqual(oldPID, 0)
            try await database.pool.query("SELECT pg_terminate_backend($1)", [oldPID])
            let afterKill = await iterator.next()
            XCTAssertEqual(afterKill, .reconnected)
            XCTAssertNotEqual(listener.backendPID, oldPID)
            try await database.pool.query("SELECT pg_notify('orch_jobs', 'after')")
            let fourth = await iterator.next()
            XCTAssertEqual(fourth, .notification(channel: .jobs, payload: "after"))
            group.cancelAll()
        }
    }
}
