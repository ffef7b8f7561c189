import Foundation
import Logging
import Store

/// A fresh database per test suite on the server named by `ORCH_TEST_DATABASE_URL` (a
/// `postgresql://` URI; `scripts/test.sh` starts a throwaway server and sets it).
public final class TestDatabase: Sendable {
    /// The URI of this suite's database.
    public let url: String
    /// The database name.
    public let name: String
    /// A pool on it.
    public let pool: ConnectionPool
    private let adminURL: String

    /// The server URI, or a skip-worthy error when none is configured.
    public static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["ORCH_TEST_DATABASE_URL"], !url.isEmpty else {
            throw TestSetupError("ORCH_TEST_DATABASE_URL is not set; run the tests through scripts/test.sh")
        }
        return url
    }

    /// Creates `orch_t_<suite>_<random>` and (optionally) applies the project's migrations.
    public static func create(
        suite: String, migrate: Bool = true, maxConnections: Int = 10
    ) async throws -> TestDatabase {
        let adminURL = try serverURL()
        let name =
            "orch_t_\(suite.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(30))_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = ConnectionPool(
            configuration: DatabaseConfiguration(
                connectionString: adminURL, applicationName: "orch-test-admin", maxConnections: 1), logger: testLogger)
        do {
            try await admin.withConnection { connection in
                // Identifiers cannot be parameters; `name` is built above from letters and digits only.
                _ = try await connection.query("CREATE DATABASE \(name)")
            }
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        let url = try replacingDatabase(in: adminURL, with: name)
        let pool = ConnectionPool(
            configuration: DatabaseConfiguration(
                connectionString: url, applicationName: "orch-test", maxConnections: maxConnections,
                acquireTimeout: .seconds(20)),
            logger: testLogger)
        let database = TestDatabase(url: url, name: name, pool: pool, adminURL: adminURL)
        if migrate {
            try await Migrator(pool: pool, directory: migrationsDirectory, logger: testLogger).migrate()
        }
        return database
    }

    private init(url: String, name: String, pool: ConnectionPool, adminURL: String) {
        self.url = url
        self.name = name
        self.pool = pool
        self.adminURL = adminURL
    }

    /// Closes the pool and drops the database (forcing out any session left behind).
    public func drop() async {
        await pool.close()
        let admin = ConnectionPool(
            configuration: DatabaseConfiguration(
                connectionString: adminURL, applicationName: "orch-test-admin", maxConnections: 1), logger: testLogger)
        _ = try? await admin.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        await admin.close()
    }

    /// A new pool on this database (a second "replica" in the same process).
    public func makePool(maxConnections: Int = 10, applicationName: String = "orch-test") -> ConnectionPool {
        ConnectionPool(
            configuration: DatabaseConfiguration(
                connectionString: url, applicationName: applicationName, maxConnections: maxConnections),
            logger: testLogger)
    }

    static func replacingDatabase(in url: String, with name: String) throws -> String {
        guard var components = URLComponents(string: url), components.scheme?.hasPrefix("postgres") == true else {
            throw TestSetupError("ORCH_TEST_DATABASE_URL must be a postgresql:// URI, got \(url)")
        }
        components.path = "/" + name
        return components.string!
    }
}

/// Runs `body` on a fresh database (`TestDatabase.create`) and drops it afterwards, also when `body`
/// throws: for a test that wants a database of its own (or several in turn) rather than the one a
/// `DatabaseTestCase` suite gets per test method, without a do/catch around every use to drop it.
public func withTestDatabase<T>(
    suite: String, migrate: Bool = true, maxConnections: Int = 10,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (TestDatabase) async throws -> T
) async throws -> T {
    let database = try await TestDatabase.create(suite: suite, migrate: migrate, maxConnections: maxConnections)
    do {
        let result = try await body(database)
        await database.drop()
        return result
    } catch {
        await database.drop()
        throw error
    }
}

/// The package root, found from this file's path.
public let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The project's `migrations/` directory.
public let migrationsDirectory: URL = packageRoot.appendingPathComponent("migrations")

/// A logger for tests (warnings and above, unless `ORCH_TEST_LOG_LEVEL` says otherwise).
public let testLogger: Logger = {
    var logger = Logger(label: "orchestrator.tests")
    logger.logLevel =
        ProcessInfo.processInfo.environment["ORCH_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return logger
}()

/// A test could not be set up.
public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
public func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
