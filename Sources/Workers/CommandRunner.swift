import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a short-lived command (git, a test or deploy command) to its end: argv, never a shell; its
/// own process group, killed whole at the timeout; stdout and stderr captured together.
struct CommandRunner: Sendable {
    /// A command that exited non-zero (or could not start, or timed out).
    struct Failure: Error, CustomStringConvertible {
        let command: [String]
        let exitCode: Int32
        let output: String
        var description: String {
            "\(command.joined(separator: " ")) exited \(exitCode): \(output.suffix(2000).trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    /// The environment commands get.
    var environment: [String: String]

    /// The orchestrator's allowlisted environment plus `extra`.
    init(extra: [String: String] = [:]) {
        environment = AgentLauncher.inheritedEnvironment(adding: extra)
    }

    /// Runs and returns exit code and output (which ends with a note when the command was killed
    /// at its timeout); `check` turns a non-zero exit into `Failure`. Throws `CancellationError`
    /// when the calling task was cancelled (the command is killed).
    @discardableResult
    func run(_ arguments: [String], in directory: String, timeout: Duration = .seconds(600), check: Bool = true) async throws -> (exitCode: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("orch-cmd-\(UUID().uuidString).out").path
        defer { unlink(outputPath) }
        // No grace: a git or test command past its timeout is killed, group and all, at once.
        let termination = try await ChildProcess.run(
            arguments: arguments, environment: environment, directory: directory, outputPath: outputPath, input: nil,
            timeout: timeout, grace: .zero)
        // Killed because the caller was cancelled (shutdown, STOP, the job's own timeout): not a
        // failed command. Reporting its exit status would let a gate count a failed test.
        if termination.cancelled { throw CancellationError() }
        let exit = termination.exitCode
        var output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if termination.timedOut { output += "\n[orchestrator] killed: timed out after \(timeout)\n" }
        if check, exit != 0 { throw Failure(command: arguments, exitCode: exit, output: output) }
        return (exit, output)
    }
}
