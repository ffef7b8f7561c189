import Foundation
import Store

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
            let tail = output.suffix(2000).trimmingCharacters(in: .whitespacesAndNewlines)
            // The argv too: a clone URL may carry a token.
            return SecretRedactor.shared.redact("\(command.joined(separator: " ")) exited \(exitCode): \(tail)")
        }
    }

    /// The environment commands get.
    var environment: [String: String]
    /// Whether a command keeps this process's `HOME` (the Workspace's git: the remote's
    /// credentials live there) or gets the task's own (`TaskHome`; gate and deploy commands,
    /// which run code the agent wrote).
    var keepsHome: Bool

    /// The user gate and deploy commands run as (`agents.default.user`): they run code the agent
    /// wrote, so they get no more access than the agent. The directory is handed to that user for
    /// the run and taken back afterwards, as for an agent.
    var identity: ChildIdentity?

    /// The orchestrator's allowlisted environment plus `extra`; `keepsHome` and `identity` as above.
    init(extra: [String: String] = [:], keepsHome: Bool = false, identity: ChildIdentity? = nil) {
        environment = AgentLauncher.inheritedEnvironment(adding: extra)
        self.keepsHome = keepsHome
        self.identity = identity
    }

    /// Runs and returns exit code and output (which ends with a note when the command was killed
    /// at its timeout); `check` turns a non-zero exit into `Failure`. Throws `CancellationError`
    /// when the calling task was cancelled (the command is killed).
    ///
    /// The output is bounded: its first `BoundedOutput.commandHeadBytes` and last
    /// `BoundedOutput.commandTailBytes`, with "… N bytes omitted …" between, whatever the command
    /// prints; nothing goes to disk. Configured secrets in it are redacted (`SecretRedactor`), as
    /// it ends up in gate feedback, task events and notifications.
    @discardableResult
    func run(
        _ arguments: [String], in directory: String, timeout: Duration = .seconds(600), check: Bool = true
    ) async throws -> (exitCode: Int32, output: String) {
        var environment = self.environment
        var temporaryHome: String?
        if !keepsHome {
            let home: String
            if let taskHome = TaskHome.path(forWorktree: directory) {
                home = taskHome
            } else {
                // Not a task's worktree: a home for this run only, never this process's own.
                home =
                    FileManager.default.temporaryDirectory
                    .appendingPathComponent("orch-home-\(UUID().uuidString)").path
                temporaryHome = home
            }
            try TaskHome.prepare(home, owner: identity)
            environment.merge(TaskHome.environment(home: home)) { _, new in new }
        }
        defer {
            // Another user's home is left alone: removing a tree its owner can still change
            // could be steered outside it.
            if let temporaryHome, Ownership.isOwnedBySelf(temporaryHome) {
                try? FileManager.default.removeItem(atPath: temporaryHome)
            }
        }
        let capture = OutputCapture()
        // The orchestrator's own git refuses a worktree owned by someone else: take it back,
        // also when handing it over failed half-way.
        defer { if identity != nil { try? Ownership.change(directory, to: geteuid(), getegid()) } }
        if let identity {
            environment["USER"] = identity.userName
            environment["LOGNAME"] = identity.userName
            try Ownership.change(directory, to: identity.userID, identity.groupID)
        }
        // No grace: a git or test command past its timeout is killed, group and all, at once.
        let termination = try await ChildProcess.run(
            arguments: arguments, environment: environment, directory: directory, output: capture, input: nil,
            timeout: timeout, grace: .zero, identity: identity)
        // Killed because the caller was cancelled (shutdown, STOP, the job's own timeout): not a
        // failed command. Reporting its exit status would let a gate count a failed test.
        if termination.cancelled { throw CancellationError() }
        let exit = termination.exitCode
        var output = SecretRedactor.shared.redact(capture.text)
        if termination.timedOut { output += "\n[orchestrator] killed: timed out after \(timeout)\n" }
        if check, exit != 0 { throw Failure(command: arguments, exitCode: exit, output: output) }
        return (exit, output)
    }
}
