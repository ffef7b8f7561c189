import Foundation
import Logging

/// Applies `NNNN_name.sql` files in order, each in its own transaction, recorded with a checksum.
///
/// Runs under an advisory lock so replicas starting together apply each migration exactly once.
/// Refuses to continue when an applied migration's file has changed: migrations are append-only.
public struct Migrator: Sendable {
    /// One migration file.
    public struct Migration: Sendable, Equatable {
        /// The number from the file name.
        public let version: Int
        /// The file name, e.g. `0001_jobs.sql`.
        public let name: String
        /// The SQL text.
        public let sql: String
    }

    /// Why migrating stopped.
    public struct MigrationError: Error, CustomStringConvertible {
        /// A sentence naming the file and the problem.
        public let description: String
    }

    private let pool: ConnectionPool
    private let directory: URL
    private let logger: Logger

    /// Creates a migrator for the `.sql` files in `directory`.
    public init(pool: ConnectionPool, directory: URL, logger: Logger) {
        self.pool = pool
        self.directory = directory
        self.logger = logger
    }

    /// Finds the migrations directory: `ORCH_MIGRATIONS_DIR`, else `migrations/` in the working
    /// directory, else beside or above the executable (a source checkout or an installed layout).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let explicit = environment["ORCH_MIGRATIONS_DIR"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit)
        }
        let fileManager = FileManager.default
        var candidates = [URL(fileURLWithPath: fileManager.currentDirectoryPath).appendingPathComponent("migrations")]
        var executableDirectory = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(executableDirectory.appendingPathComponent("migrations"))
            candidates.append(executableDirectory.appendingPathComponent("share/orchestrator/migrations"))
            executableDirectory.deleteLastPathComponent()
        }
        return candidates.first { fileManager.fileExists(atPath: $0.path) } ?? candidates[0]
    }

    /// Reads and orders the migration files.
    public func loadMigrations() throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError(
                description: "cannot read migrations directory \(directory.path): \(error.localizedDescription)")
        }
        var migrations: [Migration] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            let digits = name.prefix { $0.isNumber }
            guard digits.count == 4, let version = Int(digits), name.dropFirst(4).first == "_" else {
                throw MigrationError(description: "migration file \(name) is not named NNNN_name.sql")
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            if let previous = migrations.last, previous.version == version {
                throw MigrationError(description: "migrations \(previous.name) and \(name) share version \(version)")
            }
            migrations.append(Migration(version: version, name: name, sql: sql))
        }
        return migrations
    }

    /// Applies every pending migration; returns the names applied by this call.
    @discardableResult
    public func migrate() async throws -> [String] {
        let migrations = try loadMigrations()
        return try await pool.withAdvisoryLock(AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.migrations, key: 1))
        { _ in
            try await pool.withConnection { connection in
                try await connection.execute(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """)
                var applied: [Int: (name: String, checksum: String)] = [:]
                for row in try await connection.query("SELECT version, name, checksum FROM schema_migrations").rows {
                    applied[try row.decode("version")] = (try row.decode("name"), try row.decode("checksum"))
                }
                var appliedNow: [String] = []
                for migration in migrations {
                    let checksum = try await Self.checksum(of: migration.sql, on: connection)
                    if let existing = applied[migration.version] {
                        guard existing.checksum == checksum else {
                            throw MigrationError(
                                description:
                                    "migration \(migration.name) was changed after it was applied (checksum \(checksum.prefix(12)) ≠ recorded \(existing.checksum.prefix(12))); migrations are append-only: restore the file and add a new migration instead"
                            )
                        }
                        continue
                    }
                    try await connection.execute("BEGIN")
                    do {
                        try await connection.executeScript(migration.sql)
                        try await connection.query(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                            [migration.version, migration.name, checksum])
                        try await connection.execute("COMMIT")
                    } catch {
                        try? await connection.execute("ROLLBACK")
                        throw MigrationError(description: "migration \(migration.name) failed: \(error)")
                    }
                    logger.info("applied migration", metadata: ["migration.name": "\(migration.name)"])
                    appliedNow.append(migration.name)
                }
                if let recorded = applied.keys.max(), let known = migrations.last?.version, recorded > known {
                    logger.warning(
                        "database has migrations newer than this binary", metadata: ["migration.version": "\(recorded)"]
                    )
                }
                return appliedNow
            }
        }
    }

    private static func checksum(of sql: String, on connection: Connection) async throws -> String {
        try await connection.query("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS sum", [sql]).first!.decode(
            "sum")
    }
}
