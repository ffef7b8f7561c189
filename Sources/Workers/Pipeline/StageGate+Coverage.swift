import Store

/// The coverage gate, the last step of the development gate (after `test_command` passed, so a
/// red build is never reported as a coverage problem).
extension StageGate {
    /// Runs `coverage_command` in the worktree (like `test_command`: as the agents' user, bounded
    /// by the test timeout), reads its percentage (`CoverageReport`), judges it against the
    /// repository's baseline and settings (`CoverageGate`) and records the measurement with the
    /// head it measured, passed or not: the merge stage raises the baseline from the task's latest
    /// passing one. Nil when the gate is off, the repository out of its scope, or without a
    /// `coverage_command`.
    func coverageVerdict(
        _ repo: RepositorySettings, workItem: String, in worktree: String
    ) async throws -> CoverageGate.Verdict? {
        guard let store = coverage, !repo.gates.outOfScope.contains(.coverageGate), let command = repo.coverageCommand
        else { return nil }
        let shown = command.joined(separator: " ")
        let (exit, output) = try await commands.run(command, in: worktree, timeout: testTimeout, check: false)
        guard exit == 0 else {
            return .fail("coverage_command \(shown) failed with exit \(exit):\n\(output.suffix(4000))")
        }
        guard let measured = CoverageReport.parse(output) else {
            return .fail(
                "coverage_command \(shown) printed no coverage percentage (a Cobertura line-rate, a TOTAL … N% line "
                    + "or N%); the end of its output:\n\(output.suffix(2000))")
        }
        let baseline = try await store.baseline(repo: repo.repo)?.baseline
        let verdict = CoverageGate.decide(
            measured: measured, baseline: baseline, settings: repo.gates.coverage, repo: repo.repo)
        try await store.record(
            workItem: workItem, repo: repo.repo, percent: measured,
            headSHA: try await workspace.head(repo, workItem: workItem), passed: verdict.passed)
        return verdict
    }
}
