import Foundation
import TestSupport
import XCTest

@testable import Store

/// Several statements in one round trip on a dedicated session (libpq's pipeline mode).
final class SessionPipelineTests: DatabaseTestCase {
    func testStatementsComeBackInOrderAndAFailureLeavesTheSessionUsable() async throws {
        let session = DedicatedSession(
            configuration: database.pool.configuration, name: "pipeline", timeout: .seconds(5), logger: testLogger)
        let results = try await session.pipeline([
            (sql: "SELECT $1::int + 1 AS n", parameters: [1]), (sql: "SELECT $1::text AS t", parameters: ["two"]),
        ])
        XCTAssertEqual(try results[0].first?.decode("n", as: Int.self), 2)
        XCTAssertEqual(try results[1].first?.decode("t", as: String.self), "two")

        // A failure in the middle: its error is thrown, the rest was skipped, the session goes on.
        let pid = session.backendPID
        do {
            _ = try await session.pipeline([
                (sql: "SELECT 1 AS n", parameters: []), (sql: "SELECT 1 / $1::int AS n", parameters: [0]),
                (sql: "SELECT 3 AS n", parameters: []),
            ])
            XCTFail("division by zero must be thrown")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "22012")
        }
        XCTAssertEqual(session.backendPID, pid, "outside a transaction the session is kept")
        let after = try await session.query("SELECT 1 / $1::int AS n", [1]).first?.decode("n", as: Int.self)
        XCTAssertEqual(after, 1)

        // A failure inside a transaction: the session is closed, which rolls the transaction back.
        try await database.pool.query("CREATE TABLE pipeline_probe (n int)")
        do {
            _ = try await session.pipeline([
                (sql: "BEGIN", parameters: []), (sql: "INSERT INTO pipeline_probe VALUES (1)", parameters: []),
                (sql: "SELECT 1 / $1::int AS n", parameters: [0]),
            ])
            XCTFail("division by zero must be thrown")
        } catch {}
        XCTAssertEqual(session.backendPID, 0, "closed")
        let rows = try await database.pool.query("SELECT count(*) AS n FROM pipeline_probe").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(rows, 0, "rolled back")
        let reopened = try await session.query("SELECT 5 AS n").first?.decode("n", as: Int.self)
        XCTAssertEqual(reopened, 5, "reopened")
        await session.close()
    }
}
