import ArgumentParser
import Foundation
import Store

/// `orchestrator migrate`: applies pending migrations and exits.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending migrations and exit (safe to run from several replicas at once)."
    )

    @Option(
        help: "Directory of NNNN_name.sql files (default: ORCH_MIGRATIONS_DIR, ./migrations, or beside the binary).")
    var migrations: String?

    func run() async throws {
        let configuration = try loadConfiguration()
        let logger = makeLogger(label: "orchestrator.migrate", level: configuration.logLevel)
        let pool = ConnectionPool(
            configuration: configuration.database(applicationName: "orchestrator-migrate"), logger: logger)
        do {
            let directory = migrations.map { URL(fileURLWithPath: $0) } ?? Migrator.defaultDirectory()
            let applied = try await Migrator(pool: pool, directory: directory, logger: logger).migrate()
            print(applied.isEmpty ? "migrations: up to date" : "migrations applied: \(applied.joined(separator: ", "))")
            await pool.close()
        } catch {
            await pool.close()
            logger.critical("migration failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}
