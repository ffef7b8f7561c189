import ArgumentParser
import Foundation
import Logging

/// The `orchestrator` command line (DESIGN §3).
@main
struct Orchestrator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestrator",
        abstract: "Multi-agent orchestrator: a PostgreSQL-backed, horizontally scalable job pipeline.",
        subcommands: [ServeCommand.self, MigrateCommand.self, BenchCommand.self]
    )
}

/// Builds the process logger: swift-log to stderr at the configured level.
func makeLogger(label: String, level: Logger.Level) -> Logger {
    LoggingBootstrap.once
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}

private enum LoggingBootstrap {
    static let once: Void = LoggingSystem.bootstrap(StreamLogHandler.standardError)
}

/// Loads the configuration or exits with a message naming the bad key.
func loadConfiguration() throws -> AppConfiguration {
    do {
        return try AppConfiguration()
    } catch let error as ConfigurationError {
        throw ValidationError(error.description)
    }
}
