import XCTest

/// The base class of the suites whose tests each run against a fresh database: `setUp()` creates
/// `database` (`TestDatabase.create`, named after the class unless `databaseSuite` says otherwise)
/// and `tearDown()` drops it, so no suite carries its own copy of that pair.
///
/// A base class rather than `withTestDatabase` because most suites build stores on the database in
/// `setUp()` and share them across many test methods. A subclass tunes the database by overriding
/// `databaseSuite`, `databaseMigrates` or `databaseMaxConnections`, does its per-suite setup by
/// overriding `setUp()` after `try await super.setUp()`, and its extra teardown (stopping processes,
/// killing agents) by overriding `tearDown()` before `try await super.tearDown()`, which drops the
/// database.
open class DatabaseTestCase: XCTestCase {
    /// This test's database, created in `setUp()` and dropped in `tearDown()`.
    public var database: TestDatabase!

    /// The suite part of the database name (`orch_t_<suite>_<random>`); the class name by default.
    open var databaseSuite: String { String(describing: type(of: self)) }

    /// Whether the project's migrations are applied to the new database (default: yes).
    open var databaseMigrates: Bool { true }

    /// The size of `database.pool` (default: 10).
    open var databaseMaxConnections: Int { 10 }

    open override func setUp() async throws {
        try await super.setUp()
        database = try await TestDatabase.create(
            suite: databaseSuite, migrate: databaseMigrates, maxConnections: databaseMaxConnections)
    }

    open override func tearDown() async throws {
        await database?.drop()
        try await super.tearDown()
    }
}
