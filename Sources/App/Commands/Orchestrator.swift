import ArgumentParser
import Foundation
import Logging
import Store

/// The `orchestrator` command line.
@main
struct Orchestrator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestrator",
        abstract: "Multi-agent orchestrator: a PostgreSQL-backed, horizontally scalable job pipeline.",
        subcommands: [ServeCommand.self, MigrateCommand.self, ConfigCommand.self, BenchCommand.self]
    )

    /// The entry point: the process is made non-dumpable before anything else runs (before a
    /// secret is read or a child started), then the command line is parsed and run.
    static func main() async {
        ProcessHardening.makeNonDumpable()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Builds the process logger: swift-log to stderr at the configured level.
func makeLogger(label: String, level: Logger.Level) -> Logger {
    LoggingBootstrap.once
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}

private enum LoggingBootstrap {
    static let once: Void = LoggingSystem.bootstrap { LazyMetadataLogHandler(label: $0) }
}

/// Loads the configuration or exits with a message naming the bad key, and hands its secrets to
/// the process-wide `SecretRedactor` (and the journal's settings to `LessonJournal`) before
/// anything can write text that might contain them.
func loadConfiguration() throws -> AppConfiguration {
    let configuration: AppConfiguration
    do {
        configuration = try AppConfiguration()
    } catch let error as ConfigurationError {
        throw ValidationError(error.description)
    }
    SecretRedactor.shared.configure(secrets: configuration.secrets)
    LessonJournal.shared.configure(configuration.lessons)
    return configuration
}
