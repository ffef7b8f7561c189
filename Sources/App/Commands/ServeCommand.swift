import ArgumentParser
import Foundation
import Store

/// `orchestrator serve`: runs one replica (HTTP API and/or queue workers).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a replica: HTTP API and/or workers. Applies pending migrations first unless --no-migrate."
    )

    @Option(help: "all (API and workers), api (HTTP only) or worker (workers only, no HTTP listener).")
    var role: ReplicaRole = .all

    @Option(help: "Listen address (default ORCH_HOST or 0.0.0.0).")
    var host: String?

    @Option(help: "Listen port (default ORCH_PORT or 8080).")
    var port: Int?

    @Flag(name: .customLong("no-migrate"), help: "Do not apply pending migrations at start.")
    var noMigrate = false

    func run() async throws {
        var configuration = try loadConfiguration()
        if let host { configuration.host = host }
        if let port { configuration.port = port }
        do {
            try configuration.file.checkAgentUsers()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        let logger = makeLogger(label: "orchestrator", level: configuration.logLevel)
        ProcessHardening.log(to: logger, redactedSecrets: SecretRedactor.shared.count)
        do {
            try await ReplicaRuntime.run(configuration: configuration, role: role, migrate: !noMigrate, logger: logger)
        } catch {
            logger.critical("replica stopped with an error", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}

/// What a replica runs.
enum ReplicaRole: String, ExpressibleByArgument, Sendable, CaseIterable {
    case all, api, worker

    var servesHTTP: Bool { self != .worker }
    var runsWorkers: Bool { self != .api }
}
