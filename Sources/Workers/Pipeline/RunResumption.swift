import Store

/// What a retried agent-stage job does with the work an earlier attempt of it left, decided from
/// facts alone (no git, no database) so every case is unit-tested: the stage runner gathers the
/// facts and carries the decision out.
///
/// An earlier attempt's run that succeeded recorded the commit of its work before pushing it and
/// the pushed head after. A retry must not pay for the agent again when that work can still be
/// used, and must never push it over a branch that moved on.
enum RunResumption: Equatable, Sendable {
    /// No earlier run left work: run the agent.
    case runAgent
    /// The branch is at the run's commit (it was pushed): judge that work.
    case judge(AgentRunStore.RunWork)
    /// The run's push did not go through but this replica has its commit and the branch is still
    /// where the run started: push the commit, expecting the branch there, then judge it.
    case pushAgain(AgentRunStore.RunWork, expecting: Workspace.RemoteBranchExpectation)
    /// The work cannot be used (the branch moved on, or the commit was made on another replica):
    /// run the agent again.
    case runAgain(because: String)

    /// Decides from the earlier run's `work`, the task branch `head` a fresh worktree starts at,
    /// the remote branch's head (`remote`, nil when the remote has no such branch) and whether
    /// this replica's clone `hasCommit` the run's commit.
    static func decide(work: AgentRunStore.RunWork?, head: String, remote: String?, hasCommit: Bool) -> RunResumption {
        guard let work else { return .runAgent }
        if head == work.committed { return .judge(work) }
        if work.pushed != nil { return .runAgain(because: "the branch moved on from the pushed work") }
        guard remote == nil || remote == work.base else {
            return .runAgain(because: "the branch moved on from where the run started")
        }
        guard hasCommit else { return .runAgain(because: "the run's commit was made on another replica") }
        return .pushAgain(work, expecting: remote.map { .at($0) } ?? .absent)
    }
}
