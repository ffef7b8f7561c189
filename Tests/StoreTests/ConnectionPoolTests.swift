import Foundation
import Store
import TestSupport
import XCTest

final class ConnectionPoolTests: DatabaseTestCase {
    override var databaseMigrates: Bool { false }

    func testDecodesTypedValuesIncludingNull() async throws {
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let row = try await database.pool.query(
            """
            SELECT NULL::text AS nothing, true AS yes, false AS no, 42::int4 AS small, 9007199254740993::int8 AS big,
                   'héllo ✓'::text AS words, $1::uuid AS id, $2::timestamptz AS at,
                   '{"a": [1, 2], "b": null}'::jsonb AS doc, 1.5::float8 AS ratio,
                   '2026-01-02 03:04:05+05:30'::timestamptz AS offset_time
            """,
            [id, when]
        ).first!
        XCTAssertNil(try row.decode("nothing", as: String?.self))
        XCTAssertThrowsError(try row.decode("nothing", as: String.self))
        XCTAssertEqual(try row.decode("yes", as: Bool.self), true)
        XCTAssertEqual(try row.decode("no", as: Bool.self), false)
        XCTAssertEqual(try row.decode("small", as: Int32.self), 42)
        XCTAssertEqual(try row.decode("big", as: Int64.self), 9_007_199_254_740_993)
        XCTAssertEqual(try row.decode("words", as: String.self), "héllo ✓")
        XCTAssertEqual(try row.decode("id", as: UUID.self), id)
        XCTAssertEqual(
            try row.decode("at", as: Date.self).timeIntervalSince1970, when.timeIntervalSince1970, accuracy: 0.000001)
        XCTAssertEqual(try row.decode("ratio", as: Double.self), 1.5)
        struct Doc: Decodable, Equatable { let a: [Int]; let b: Int? }
        XCTAssertEqual(try row.decode("doc", as: JSONB.self).decode(Doc.self), Doc(a: [1, 2], b: nil))
        // 03:04:05 at +05:30 is 21:34:05 UTC the day before.
        XCTAssertEqual(
            try row.decode("offset_time", as: Date.self).timeIntervalSince1970, 1_767_303_245, accuracy: 0.001)
        XCTAssertThrowsError(try row.decode("words", as: Int.self)) { error in
            XCTAssertEqual((error as? PostgresError)?.kind, .decoding)
        }
    }

    func testParametersAreNeverSplicedIntoSQL() async throws {
        let hostile = "'); DROP TABLE victims; --"
        try await database.pool.query("CREATE TABLE victims (name text)")
        try await database.pool.query("INSERT INTO victims (name) VALUES ($1)", [hostile])
        let row = try await database.pool.query("SELECT name, (SELECT count(*) FROM victims) AS n FROM victims").first!
        XCTAssertEqual(try row.decode("name", as: String.self), hostile)
        XCTAssertEqual(try row.decode("n", as: Int.self), 1)
        let array = try await database.pool.query(
            "SELECT $1::text[] AS a", [PostgresArray(["x\"y", "a\\b", "{}", ","])]
        ).first!
        XCTAssertEqual(try array.decode("a", as: String.self), #"{"x\"y","a\\b","{}",","}"#)
    }

    func testSQLErrorsCarrySQLStateAndLeaveTheConnectionUsable() async throws {
        try await database.pool.query("CREATE TABLE things (id int PRIMARY KEY)")
        try await database.pool.query("INSERT INTO things VALUES (1)")
        do {
            try await database.pool.query("INSERT INTO things VALUES (1)")
            XCTFail("expected a unique violation")
        } catch let error as PostgresError {
            XCTAssertEqual(error.kind, .server)
            XCTAssertEqual(error.sqlState, "23505")
            XCTAssertTrue(error.isUniqueViolation)
            XCTAssertFalse(error.isConnectionLost)
        }
        do {
            try await database.pool.query("SELEC 1")
            XCTFail("expected a syntax error")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "42601")
        }
        do {
            try await database.pool.query("SELECT 1 / $1::int", [0])
            XCTFail("expected division by zero")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "22012")
        }
        // A serialization failure is recognisable too.
        do {
            try await database.pool.query("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure'; END $$")
            XCTFail("expected a serialization failure")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isSerializationFailure)
            XCTAssertTrue(error.isTransient)
        }
        let value1 = try await database.pool.query("SELECT count(*) AS n FROM things").first!.decode("n", as: Int.self)
        XCTAssertEqual(value1, 1)
    }

    func testTransactionRollsBackAndKeepsTheOriginalError() async throws {
        struct Boom: Error {}
        try await database.pool.query("CREATE TABLE ledger (n int)")
        do {
            try await database.pool.withTransaction { connection in
                try await connection.query("INSERT INTO ledger VALUES (1)")
                throw Boom()
            }
            XCTFail("expected Boom")
        } catch is Boom {}
        do {
            _ = try await database.pool.withTransaction { connection in
                try await connection.query("INSERT INTO ledger VALUES (2)")
                try await connection.query("INSERT INTO ledger VALUES ('not a number')")
            }
            XCTFail("expected a server error")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "22P02")
        }
        _ = try await database.pool.withTransaction { connection in
            try await connection.query("INSERT INTO ledger VALUES (3)")
        }
        let rows = try await database.pool.query("SELECT n FROM ledger").rows.map { try $0.decode("n", as: Int.self) }
        XCTAssertEqual(rows, [3])
    }

    func testPoolReplacesConnectionsKilledByTheServer() async throws {
        let pool = database.makePool(maxConnections: 3, applicationName: "orch-test-killme")
        defer { Task { await pool.close() } }
        // Fill the pool with idle connections, then kill every one of them server-side.
        async let a: Void = pool.withConnection { _ = try await $0.query("SELECT pg_sleep(0.05)") }
        async let b: Void = pool.withConnection { _ = try await $0.query("SELECT pg_sleep(0.05)") }
        async let c: Void = pool.withConnection { _ = try await $0.query("SELECT pg_sleep(0.05)") }
        _ = try await (a, b, c)
        XCTAssertEqual(pool.statistics.idle, 3)
        try await database.pool.query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'orch-test-killme'",
            [database.name])
        let gone = try await waitUntil(timeout: .seconds(10)) {
            try await database.pool.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'orch-test-killme'"
            ).first!.decode("n", as: Int.self) == 0
        }
        XCTAssertTrue(gone)
        // Every later query succeeds on a fresh connection; nothing surfaces the dead sockets.
        for _ in 0..<5 {
            let value2 = try await pool.query("SELECT 7 AS n").first!.decode("n", as: Int.self)
            XCTAssertEqual(value2, 7)
        }
        XCTAssertLessThanOrEqual(pool.statistics.open, 3)
    }

    func testWaitersAreServedInOrderAndTimeOut() async throws {
        let pool = ConnectionPool(
            configuration: DatabaseConfiguration(
                connectionString: database.url, maxConnections: 1, acquireTimeout: .milliseconds(300)),
            logger: testLogger)
        defer { Task { await pool.close() } }
        // One holder keeps the only connection longer than the acquire timeout.
        async let holder: Void = pool.withConnection { _ = try await $0.query("SELECT pg_sleep(1)") }
        try await Task.sleep(for: .milliseconds(100))
        do {
            try await pool.query("SELECT 1")
            XCTFail("expected a pool timeout")
        } catch let error as PostgresError {
            XCTAssertEqual(error.kind, .poolTimeout)
        }
        try await holder
        let value3 = try await pool.query("SELECT 1 AS n").first!.decode("n", as: Int.self)
        XCTAssertEqual(value3, 1)
    }

    func testConnectFailureIsAConnectionError() async throws {
        let pool = ConnectionPool(
            configuration: DatabaseConfiguration(
                connectionString: "postgresql://postgres@127.0.0.1:1/none", maxConnections: 1),
            logger: testLogger)
        defer { Task { await pool.close() } }
        do {
            try await pool.query("SELECT 1")
            XCTFail("expected a connect failure")
        } catch let error as PostgresError {
            XCTAssertEqual(error.kind, .connectFailed)
            XCTAssertTrue(error.isConnectionLost)
        }
    }
}
