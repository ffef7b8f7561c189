/// The repository gates' kill switches (`ORCH_MERGE_GATE_ENABLED`, `ORCH_SERIAL_GATE_ENABLED`,
/// `ORCH_TASK_DEPS_ENABLED`, `ORCH_COVERAGE_GATE_ENABLED`, `ORCH_POST_DEPLOY_ENABLED`), all on by
/// default; each `/queue` block shows its own. A gate switched on may still be out of a
/// repository's scope (`RepositoryGates.outOfScope`): `applies(_:to:)` answers both.
public struct GateSwitches: Sendable, Equatable {
    /// The merge lease and the merge commit's verification.
    public var mergeGate: Bool
    /// At most `max_active_tasks` per repository past their first stage, and the freeze.
    public var serialGate: Bool
    /// `Depends on` / `Blocked by` edges.
    public var taskDependencies: Bool
    /// `coverage_command` in the development gate.
    public var coverageGate: Bool
    /// The watch of `health_url` after a deploy.
    public var postDeploy: Bool

    /// Every gate on.
    public init(
        mergeGate: Bool = true, serialGate: Bool = true, taskDependencies: Bool = true, coverageGate: Bool = true,
        postDeploy: Bool = true
    ) {
        self.mergeGate = mergeGate
        self.serialGate = serialGate
        self.taskDependencies = taskDependencies
        self.coverageGate = coverageGate
        self.postDeploy = postDeploy
    }

    /// Whether a gate's kill switch is on.
    public func isOn(_ gate: RepositoryGate) -> Bool {
        switch gate {
        case .mergeGate: mergeGate
        case .serialGate: serialGate
        case .taskDependencies: taskDependencies
        case .coverageGate: coverageGate
        case .postDeploy: postDeploy
        }
    }

    /// Whether a gate decides for a repository: switched on, and the repository in its scope.
    public func applies(_ gate: RepositoryGate, to repo: RepositorySettings) -> Bool {
        isOn(gate) && !repo.gates.outOfScope.contains(gate)
    }
}
