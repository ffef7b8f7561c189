import Foundation
import Store
import TestSupport
import XCTest

final class MigratorTests: DatabaseTestCase {
    var directory: URL!

    override var databaseMigrates: Bool { false }

    override func setUp() async throws {
        try await super.setUp()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: migrationsDirectory.path) {
            try FileManager.default.copyItem(
                at: migrationsDirectory.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
        try "CREATE TABLE extra_one (id int);".write(
            to: directory.appendingPathComponent("0900_extra_one.sql"), atomically: true, encoding: .utf8)
        try "CREATE TABLE extra_two (id int); INSERT INTO extra_two VALUES (1);".write(
            to: directory.appendingPathComponent("0901_extra_two.sql"), atomically: true, encoding: .utf8)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        try? FileManager.default.removeItem(at: directory)
    }

    func testRacingMigratorsApplyEachMigrationOnce() async throws {
        let files = try Migrator(pool: database.pool, directory: directory, logger: testLogger).loadMigrations()
        let pools = (0..<4).map { _ in database.makePool(maxConnections: 2) }
        let directory = self.directory!
        let applied = try await withThrowingTaskGroup(of: [String].self) { group in
            for pool in pools {
                group.addTask { try await Migrator(pool: pool, directory: directory, logger: testLogger).migrate() }
            }
            var all: [String] = []
            for try await names in group { all += names }
            return all
        }
        for pool in pools { await pool.close() }
        XCTAssertEqual(
            applied.sorted(), files.map(\.name).sorted(), "every file applied exactly once across the racers")
        let recorded = try await database.pool.query("SELECT count(*) AS n FROM schema_migrations").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(recorded, files.count)
        let value1 = try await database.pool.query("SELECT count(*) AS n FROM extra_two").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(value1, 1)
        // Running again applies nothing.
        let value2 = try await Migrator(pool: database.pool, directory: directory, logger: testLogger).migrate()
        XCTAssertEqual(value2, [])
    }

    func testChangedAppliedMigrationIsRefusedByName() async throws {
        try await Migrator(pool: database.pool, directory: directory, logger: testLogger).migrate()
        try "CREATE TABLE extra_one (id bigint);".write(
            to: directory.appendingPathComponent("0900_extra_one.sql"), atomically: true, encoding: .utf8)
        do {
            try await Migrator(pool: database.pool, directory: directory, logger: testLogger).migrate()
            XCTFail("expected the changed migration to be refused")
        } catch let error as Migrator.MigrationError {
            XCTAssertTrue(error.description.contains("0900_extra_one.sql"), error.description)
            XCTAssertTrue(error.description.contains("changed"), error.description)
        }
    }

    func testFailingMigrationRollsBackAndNamesTheFile() async throws {
        try "CREATE TABLE half_done (id int); SELECT no_such_function();".write(
            to: directory.appendingPathComponent("0902_broken.sql"), atomically: true, encoding: .utf8)
        do {
            try await Migrator(pool: database.pool, directory: directory, logger: testLogger).migrate()
            XCTFail("expected failure")
        } catch let error as Migrator.MigrationError {
            XCTAssertTrue(error.description.contains("0902_broken.sql"), error.description)
        }
        let exists = try await database.pool.query("SELECT to_regclass('half_done') IS NOT NULL AS e").first!.decode(
            "e", as: Bool.self)
        XCTAssertFalse(exists, "the failed migration's statements were rolled back")
        let value3 = try await database.pool.query("SELECT max(version) AS v FROM schema_migrations").first!.decode(
            "v", as: Int.self)
        XCTAssertEqual(value3, 901)
    }

    func testBadFileNameIsRefused() async throws {
        try "SELECT 1;".write(to: directory.appendingPathComponent("12_bad.sql"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(
            try Migrator(pool: database.pool, directory: directory, logger: testLogger).loadMigrations()
        ) { error in
            XCTAssertTrue("\(error)".contains("12_bad.sql"))
        }
    }

    /// Migration 0015 on a database that already holds several tasks for one Plane issue: the
    /// oldest keeps the link, the others lose it, and the unique index is built.
    func testPlaneIssueDuplicatesAreResolvedBeforeTheUniqueIndex() async throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name >= "0015" {
            try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
        try await Migrator(pool: database.pool, directory: directory, logger: testLogger).migrate()
        try await database.pool.query(
            """
            INSERT INTO tasks (work_item, plane_issue_id) VALUES
                ('ORCH-1', 'issue-a'), ('OPS-1', 'issue-a'), ('NEW-1', 'issue-a'), ('ORCH-2', 'issue-b'), ('ORCH-3', NULL)
            """)
        let applied = try await Migrator(pool: database.pool, directory: migrationsDirectory, logger: testLogger)
            .migrate()
        XCTAssertTrue(applied.contains("0015_plane_ordering.sql"), "\(applied)")
        var links: [String: String?] = [:]
        for row in try await database.pool.query("SELECT work_item, plane_issue_id FROM tasks").rows {
            links[try row.decode("work_item")] = try row.decode("plane_issue_id", as: String?.self)
        }
        XCTAssertEqual(links, ["ORCH-1": "issue-a", "OPS-1": nil, "NEW-1": nil, "ORCH-2": "issue-b", "ORCH-3": nil])
        do {
            try await database.pool.query("UPDATE tasks SET plane_issue_id = 'issue-a' WHERE work_item = 'OPS-1'")
            XCTFail("expected a unique violation")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
    }
}
