/// Runs the orchestrator's own git (the `Workspace`'s) with repository hooks and fsmonitor
/// disabled: an agent can write into the shared bare clone (its worktree's git directory lives
/// there) and could otherwise plant `hooks/post-checkout` or `core.fsmonitor` for the
/// orchestrator's next git to execute with the orchestrator's rights and environment.
struct GitRunner: Sendable {
    /// Settings put in front of every git command: they win over any repository configuration.
    static let hardening = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]

    let runner: CommandRunner

    /// A runner with `extra` in the environment. Git keeps the orchestrator's `HOME`: the
    /// remote's credentials (a credential helper, ssh keys) are configured there.
    init(extra: [String: String]) {
        runner = CommandRunner(extra: extra, keepsHome: true)
    }

    /// The argv as run: `git` followed by the hardening settings, then the rest.
    static func hardened(_ arguments: [String]) -> [String] {
        guard let first = arguments.first, first == "git" else { return arguments }
        return [first] + hardening + arguments.dropFirst()
    }

    /// `CommandRunner.run` with the hardening settings.
    @discardableResult
    func run(
        _ arguments: [String], in directory: String, timeout: Duration = .seconds(600), check: Bool = true
    ) async throws -> (exitCode: Int32, output: String) {
        try await runner.run(Self.hardened(arguments), in: directory, timeout: timeout, check: check)
    }
}
