import Foundation

/// The git operations the stage runner and its gate perform on a task's branch: a seam, so the
/// runner's decisions can be tested with an in-memory stand-in. ``Workspace`` is the real one
/// (a bare clone per repository, a worktree per task, the remote task branch as the hand-over).
protocol TaskWorkspace: Sendable {
    /// A fresh worktree on the task branch (the remote one when it exists); its path.
    func prepare(_ repo: RepositorySettings, workItem: String) async throws -> String
    /// A fresh worktree detached at a commit of the default branch (deploy); its path.
    func prepare(_ repo: RepositorySettings, workItem: String, mergedCommit: String) async throws -> String
    /// The task worktree's head commit.
    func head(_ repo: RepositorySettings, workItem: String) async throws -> String
    /// The remote task branch's head; nil when the branch does not exist there.
    func remoteBranchHead(_ repo: RepositorySettings, workItem: String) async throws -> String?
    /// Commits everything in the worktree; false when there was nothing to commit.
    @discardableResult
    func commitAll(_ repo: RepositorySettings, workItem: String, message: String) async throws -> Bool
    /// Pushes the task branch, only if the remote branch is where `expecting` says.
    func push(
        _ repo: RepositorySettings, workItem: String, expecting: Workspace.RemoteBranchExpectation
    ) async throws
    /// Whether the clone has the commit.
    func hasCommit(_ repo: RepositorySettings, _ sha: String) async throws -> Bool
    /// Moves the task worktree to the commit.
    func reset(_ repo: RepositorySettings, workItem: String, to sha: String) async throws
    /// Writes the changes since `base` (committed or not) as a patch; false when there are none.
    func savePatch(
        _ repo: RepositorySettings, workItem: String, since base: String, to path: String
    ) async throws
        -> Bool
    /// Commits after `base` that change something outside the task's documents.
    func commitsOutsideTaskDocs(_ repo: RepositorySettings, workItem: String, since base: String) async throws -> Int
    /// Whether `path` is committed at the head, and changed since `base`.
    func committedFile(
        _ repo: RepositorySettings, workItem: String, path: String, since base: String
    ) async throws -> (tracked: Bool, changed: Bool)
    /// Merges the task branch into the default branch with git (no Gitea).
    func mergeLocally(_ repo: RepositorySettings, workItem: String) async throws -> Workspace.LocalMerge
    /// Deletes the remote task branch.
    func deleteRemoteBranch(_ repo: RepositorySettings, workItem: String) async throws
    /// Removes the task's worktree.
    func cleanup(_ repo: RepositorySettings, workItem: String) async throws
}

extension Workspace: TaskWorkspace {}
