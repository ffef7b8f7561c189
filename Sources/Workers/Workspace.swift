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
            removeStaleLocks(repo, workItem: workItem)
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
            // Later git in the worktree names this administrative directory itself (see
            // `taskGit`): make sure it is the one git just made for this worktree.
            let link = try? String(contentsOfFile: adminDirectory(repo, workItem: workItem) + "/gitdir", encoding: .utf8)
            guard link?.trimmingCharacters(in: .whitespacesAndNewlines) == worktree + "/.git" else {
                throw Failure(description: "git did not register \(worktree) as \(adminDirectory(repo, workItem: workItem))")
            }
            return worktree
        }
    }

    /// A failure of the workspace itself.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The worktree's administrative directory in the bare clone (`git worktree add` names it
    /// after the worktree's folder, the work item).
    func adminDirectory(_ repo: RepositorySettings, workItem: String) -> String {
        "\(clonePath(repo))/worktrees/\(workItem)"
    }

    /// `git` for a task's worktree, with its git directory and work tree named explicitly. The
    /// worktree's `.git` file is the agent's to rewrite: pointed at a directory of the agent's own,
    /// whose config can run commands (a filter, `core.sshCommand`, a credential helper), it would
    /// make the orchestrator's git run them with the orchestrator's rights. So git never looks it up.
    private func taskGit(_ repo: RepositorySettings, workItem: String) -> [String] {
        [
            "git", "--git-dir=\(adminDirectory(repo, workItem: workItem))",
            "--work-tree=\(worktreePath(repo, workItem: workItem))",
        ]
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

    /// Commits whatever the agent left uncommitted in the task's worktree; returns whether there
    /// was anything.
    @discardableResult
    public func commitAll(_ repo: RepositorySettings, workItem: String, message: String) async throws -> Bool {
        let git = taskGit(repo, workItem: workItem)
        let worktree = worktreePath(repo, workItem: workItem)
        try await self.git.run(git + ["add", "-A"], in: worktree)
        guard try await !self.git.run(git + ["status", "--porcelain"], in: worktree).output.isEmpty else { return false }
        try await self.git.run(git + ["commit", "--quiet", "-m", message], in: worktree)
        return true
    }

    /// Pushes the task branch to the remote (the hand-over to whichever replica runs next).
    public func push(_ repo: RepositorySettings, workItem: String) async throws {
        try await git.run(
            taskGit(repo, workItem: workItem) + ["push", "--quiet", "origin", "HEAD:refs/heads/\(Self.branch(workItem: workItem))"],
            in: worktreePath(repo, workItem: workItem), timeout: .seconds(300))
    }

    /// Commits on the task branch that the default branch does not have.
    public func newCommits(_ repo: RepositorySettings, workItem: String) async throws -> Int {
        Int(try await git.run(
            taskGit(repo, workItem: workItem) + ["rev-list", "--count", "origin/\(repo.defaultBranch)..HEAD"],
            in: worktreePath(repo, workItem: workItem)
        ).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// The commit the task's worktree is at.
    public func head(_ repo: RepositorySettings, workItem: String) async throws -> String {
        try await git.run(taskGit(repo, workItem: workItem) + ["rev-parse", "HEAD"], in: worktreePath(repo, workItem: workItem))
            .output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The commit a worktree of the orchestrator's own (never an agent's) is at.
    func head(worktree: String) async throws -> String {
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
        // A home handed to an agent's user stays (removing a tree its owner can still change
        // could be steered outside it): only the orchestrator's own are removed.
        let home = TaskHome.path(root: root, workItem: workItem)
        if Ownership.isOwnedBySelf(home) { try? FileManager.default.removeItem(atPath: home) }
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
