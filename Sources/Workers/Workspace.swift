import Foundation

/// Git working space of one replica under `ORCH_WORKDIR` (DESIGN §7): per repository a cached bare
/// clone (fetched before each use), per task a worktree on branch `orch/<WORK-ITEM>`.
///
/// Nothing here is shared between replicas: the task branch on the remote is the hand-over. A
/// stage starts from `origin/orch/<WORK-ITEM>` when it exists (work of earlier stages, possibly
/// done by another replica), else from the default branch, and ends by pushing the branch.
public struct Workspace: Sendable {
    let root: String
    let git: GitRunner
    let locks = KeyedLocks()

    /// Creates the workspace rooted at `root` (created on first use).
    public init(root: String) {
        self.root = root
        self.git = GitRunner(extra: [
            "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "orchestrator", "GIT_AUTHOR_EMAIL": "orchestrator@localhost",
            "GIT_COMMITTER_NAME": "orchestrator", "GIT_COMMITTER_EMAIL": "orchestrator@localhost",
        ])
    }

    /// The task branch.
    public static func branch(workItem: String) -> String { "orch/\(workItem)" }

    /// The work item a task branch (`orch/<WI>`) belongs to; nil for any other branch.
    public static func workItem(fromBranch branch: String) -> String? {
        branch.hasPrefix("orch/") ? String(branch.dropFirst("orch/".count)) : nil
    }

    /// Where a task's documents (spec, design, review) live in its worktree, relative to it.
    public static func taskDocs(workItem: String) -> String { "docs/tasks/\(workItem)" }

    func clonePath(_ repo: RepositorySettings) -> String { "\(root)/repos/\(repo.repo).git" }

    /// Where a task's worktree lives.
    public func worktreePath(_ repo: RepositorySettings, workItem: String) -> String {
        "\(worktreesDirectory(repo))/\(workItem)"
    }

    /// The folder holding a repository's task worktrees (one per work item).
    func worktreesDirectory(_ repo: RepositorySettings) -> String {
        "\(root)/worktrees/\(repo.repo.replacingOccurrences(of: "/", with: "__"))"
    }

    /// Fetches the repository (cloning it the first time) and gives the task a fresh worktree on
    /// its branch. Returns the worktree path.
    public func prepare(_ repo: RepositorySettings, workItem: String) async throws -> String {
        let clone = clonePath(repo)
        let worktree = worktreePath(repo, workItem: workItem)
        let branch = Self.branch(workItem: workItem)
        return try await locks.withLock(repo.repo) {
            try await fetch(repo)
            if FileManager.default.fileExists(atPath: worktree) {
                try await git.run(["git", "worktree", "remove", "--force", worktree], in: clone, check: false)
                try? FileManager.default.removeItem(atPath: worktree)
            }
            try await git.run(["git", "worktree", "prune"], in: clone)
            let remoteBranch = try await git.run(
                ["git", "rev-parse", "--verify", "--quiet", "refs/remotes/origin/\(branch)"], in: clone, check: false).exitCode == 0
            let start = remoteBranch ? "origin/\(branch)" : "origin/\(repo.defaultBranch)"
            try FileManager.default.createDirectory(atPath: (worktree as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try await git.run(["git", "worktree", "add", "--force", "-B", branch, worktree, start], in: clone)
            return worktree
        }
    }

    private func fetch(_ repo: RepositorySettings) async throws {
        let clone = clonePath(repo)
        if !FileManager.default.fileExists(atPath: clone + "/HEAD") {
            try FileManager.default.createDirectory(atPath: clone, withIntermediateDirectories: true)
            try await git.run(["git", "init", "--quiet", "--bare", clone], in: root)
            try await git.run(["git", "remote", "add", "origin", repo.cloneURL], in: clone)
            try await git.run(["git", "config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], in: clone)
        }
        try await git.run(["git", "fetch", "--quiet", "--prune", "origin"], in: clone, timeout: .seconds(300))
    }

    /// Commits whatever the agent left uncommitted; returns whether there was anything.
    @discardableResult
    public func commitAll(worktree: String, message: String) async throws -> Bool {
        try await git.run(["git", "add", "-A"], in: worktree)
        guard try await !git.run(["git", "status", "--porcelain"], in: worktree).output.isEmpty else { return false }
        try await git.run(["git", "commit", "--quiet", "-m", message], in: worktree)
        return true
    }

    /// Pushes the task branch to the remote (the hand-over to whichever replica runs next).
    public func push(worktree: String, workItem: String) async throws {
        try await git.run(["git", "push", "--quiet", "origin", "HEAD:refs/heads/\(Self.branch(workItem: workItem))"], in: worktree, timeout: .seconds(300))
    }

    /// Commits on the task branch that the default branch does not have.
    public func newCommits(worktree: String, repo: RepositorySettings) async throws -> Int {
        Int(try await git.run(["git", "rev-list", "--count", "origin/\(repo.defaultBranch)..HEAD"], in: worktree).output
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// The commit the worktree is at.
    public func head(worktree: String) async throws -> String {
        try await git.run(["git", "rev-parse", "HEAD"], in: worktree).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Merges the task branch into the default branch with a merge commit and pushes it (the
    /// no-Gitea mode: the remote is a plain git repository). Returns the merge commit. Idempotent:
    /// a branch already merged is not merged twice.
    public func mergeLocally(_ repo: RepositorySettings, workItem: String) async throws -> String {
        let clone = clonePath(repo)
        let branch = Self.branch(workItem: workItem)
        let merging = "\(root)/worktrees/merge-\(UUID().uuidString.prefix(8))"
        return try await locks.withLock(repo.repo) {
            try await fetch(repo)
            try await git.run(["git", "worktree", "add", "--detach", merging, "origin/\(repo.defaultBranch)"], in: clone)
            defer { try? FileManager.default.removeItem(atPath: merging) }
            let merged = try await git.run(
                ["git", "merge-base", "--is-ancestor", "origin/\(branch)", "HEAD"], in: merging, check: false).exitCode == 0
            if !merged {
                try await git.run(["git", "merge", "--no-ff", "--quiet", "-m", "Merge \(branch) (\(workItem))", "origin/\(branch)"], in: merging)
                try await git.run(["git", "push", "--quiet", "origin", "HEAD:refs/heads/\(repo.defaultBranch)"], in: merging, timeout: .seconds(300))
            }
            let sha = try await head(worktree: merging)
            try await git.run(["git", "worktree", "remove", "--force", merging], in: clone, check: false)
            return sha
        }
    }

    /// Removes the task's worktree, local branch and HOME (`TaskHome`; the remote branch stays,
    /// as history).
    public func cleanup(_ repo: RepositorySettings, workItem: String) async throws {
        try? FileManager.default.removeItem(atPath: TaskHome.path(root: root, workItem: workItem))
        let clone = clonePath(repo)
        guard FileManager.default.fileExists(atPath: clone) else { return }
        let worktree = worktreePath(repo, workItem: workItem)
        try await locks.withLock(repo.repo) {
            try await git.run(["git", "worktree", "remove", "--force", worktree], in: clone, check: false)
            try? FileManager.default.removeItem(atPath: worktree)
            try await git.run(["git", "worktree", "prune"], in: clone)
            try await git.run(["git", "branch", "-D", Self.branch(workItem: workItem)], in: clone, check: false)
        }
    }
}
