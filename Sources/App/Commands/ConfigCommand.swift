import ArgumentParser
import Foundation

/// `orchestrator config`: commands about the configuration.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the configuration without starting anything.",
        subcommands: [ConfigCheckCommand.self]
    )
}

/// `orchestrator config check [FILE]`: reads the environment and the `ORCH_CONFIG` file (or
/// FILE) as `serve` would, then prints the effective configuration with secrets masked, or every
/// problem it finds, one per line on stderr, and exits 1. Touches no database.
struct ConfigCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Print the effective configuration (secrets masked), or the errors; exit 1 on any error."
    )

    @Argument(help: "The configuration file to check instead of ORCH_CONFIG.")
    var file: String?

    func run() throws {
        var environment = ProcessInfo.processInfo.environment
        if let file { environment["ORCH_CONFIG"] = file }
        var problems: [String] = []
        // Every unknown key of the file, not only the first one `serve` stops at.
        if let path = environment["ORCH_CONFIG"], !path.isEmpty,
            let data = FileManager.default.contents(atPath: path)
        {
            problems += ((try? ConfigKeys.problems(String(decoding: data, as: UTF8.self))) ?? []).map(\.description)
        }
        var checked: AppConfiguration?
        do {
            checked = try AppConfiguration(environment: environment)
        } catch let error as ConfigurationError {
            if !problems.contains(error.description) { problems.append(error.description) }
        }
        guard problems.isEmpty, let checked else {
            for problem in problems { FileHandle.standardError.write(Data((problem + "\n").utf8)) }
            throw ExitCode.failure
        }
        print(EffectiveConfiguration.lines(checked).joined(separator: "\n"))
    }
}
