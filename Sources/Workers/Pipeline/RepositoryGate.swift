/// One repository gate, by the name its scope is set with: `gates: {coverage_gate: false}` in a
/// repository's entry of `ORCH_CONFIG`, or the list `ORCH_COVERAGE_GATE_REPOS` (the raw value,
/// upper-cased, between `ORCH_` and `_REPOS`).
public enum RepositoryGate: String, CaseIterable, Sendable, Hashable {
    /// The merge lease and the merge commit's verification (`ORCH_MERGE_GATE_ENABLED`).
    case mergeGate = "merge_gate"
    /// `max_active_tasks` and the freeze (`ORCH_SERIAL_GATE_ENABLED`).
    case serialGate = "serial_gate"
    /// `Depends on` / `Blocked by` edges (`ORCH_TASK_DEPS_ENABLED`).
    case taskDependencies = "task_deps"
    /// `coverage_command` in the development gate (`ORCH_COVERAGE_GATE_ENABLED`).
    case coverageGate = "coverage_gate"
    /// The watch of `health_url` after a deploy (`ORCH_POST_DEPLOY_ENABLED`).
    case postDeploy = "post_deploy"

    /// The environment variable listing the repositories the gate applies to.
    public var repositoryListVariable: String { "ORCH_\(rawValue.uppercased())_REPOS" }
}
