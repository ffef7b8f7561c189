import Foundation

/// Git working space of one replica under `ORCH_WORKDIR`: per repository a cached bare
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
        try await prepare(repo, workItem: workItem, at: nil)
    }

    /// A fresh worktree for the task, detached at `commit`, which must be on the default branch
    /// (deploy runs what was merged, never the task branch). Returns the worktree path.
    public func prepare(
        _ repo: RepositorySettings, workItem: String, mergedCommit commit: String
    ) async throws -> String {
        try await prepare(repo, workItem: workItem, at: commit)
    }

    private func prepare(_ repo: RepositorySettings, workItem: String, at commit: String?) async throws -> String {
        do {
            return try await makeWorktree(repo, workItem: workItem, at: commit)
        } catch {
            // A retry goes through only once someone gives the files back: the message says how.
            guard let evidence = FileOwnership.ownershipEvidence(in: error, under: root) else { throw error }
            throw OwnershipFailure(workItem: workItem, workdir: root, evidence: evidence)
        }
    }

    private func makeWorktree(_ repo: RepositorySettings, workItem: String, at commit: String?) async throws -> String {
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
            try FileManager.default.createDirectory(
                atPath: (worktree as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if let commit {
                let onDefault = try await git.run(
                    ["git", "merge-base", "--is-ancestor", commit, "refs/remotes/origin/\(repo.defaultBranch)"],
                    in: clone, check: false)
                guard onDefault.exitCode == 0 else {
                    throw Failure(description: "\(commit.prefix(12)) is not on \(repo.defaultBranch) of \(repo.repo)")
                }
                try await git.run(["git", "worktree", "add", "--force", "--detach", worktree, commit], in: clone)
            } else {
                let start =
                    try await remoteBranchHead(repo, workItem: workItem) != nil
                    ? "origin/\(branch)" : "origin/\(repo.defaultBranch)"
                try await git.run(["git", "worktree", "add", "--force", "-B", branch, worktree, start], in: clone)
            }
            // Later git in the worktree names this administrative directory itself (see
            // `taskGit`): make sure it is the one git just made for this worktree.
            let link = try? String(
                contentsOfFile: adminDirectory(repo, workItem: workItem) + "/gitdir", encoding: .utf8)
            guard link?.trimmingCharacters(in: .whitespacesAndNewlines) == worktree + "/.git" else {
                throw Failure(
                    description: "git did not register \(worktree) as \(adminDirectory(repo, workItem: workItem))")
            }
            return worktree
        }
    }

    /// The task branch's head on the remote as last fetched, nil when the remote has no such branch.
    public func remoteBranchHead(_ repo: RepositorySettings, workItem: String) async throws -> String? {
        let result = try await git.run(
            ["git", "rev-parse", "--verify", "--quiet", "refs/remotes/origin/\(Self.branch(workItem: workItem))"],
            in: clonePath(repo), check: false)
        return result.exitCode == 0 ? result.output.trimmingCharacters(in: .whitespacesAndNewlines) : nil
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

    func fetch(_ repo: RepositorySettings) async throws {
        let clone = clonePath(repo)
        if !FileManager.default.fileExists(atPath: clone + "/HEAD") {
            try FileManager.default.createDirectory(atPath: clone, withIntermediateDirectories: true)
            try await git.run(["git", "init", "--quiet", "--bare", clone], in: root)
            try await git.run(["git", "remote", "add", "origin", repo.cloneURL], in: clone)
            try await git.run(
                ["git", "config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], in: clone)
        }
        try await git.run(["git", "fetch", "--quiet", "--prune", "origin"], in: clone, timeout: .seconds(300))
    }

    /// Commits whatever the agent left uncommitted in the task's worktree; returns whether there
    /// was anything.
    @discardableResult
    public func commitAll(_ repo: RepositorySettings, workItem: String, message: String) async throws -> Bool {
        let git = taskGit(repo, workItem: workItem)
        let worktree = worktreePath(repo, workItem: workItem)
        try await removeTaskLocks(repo, workItem: workItem)
        try await self.git.run(git + ["add", "-A"], in: worktree)
        guard try await !self.git.run(git + ["status", "--porcelain"], in: worktree).output.isEmpty else {
            return false
        }
        try await self.git.run(git + ["commit", "--quiet", "-m", message], in: worktree)
        return true
    }

    /// What the remote task branch must be for a push to replace it.
    public enum RemoteBranchExpectation: Sendable, Equatable {
        /// A plain push: only a fast-forward goes through.
        case fastForward
        /// The branch must not exist yet.
        case absent
        /// The branch must still be at this commit (the head the run started from); any new
        /// history replaces it, so an agent that rebased the branch is pushed, while a branch
        /// someone else moved meanwhile is never overwritten.
        case at(String)
    }

    /// Before the orchestrator's own git runs in a task's worktree after its agent: an agent killed
    /// in the middle of a `git commit` leaves `index.lock` behind, and its process group is gone
    /// by now, so any lock of the task's is stale.
    private func removeTaskLocks(_ repo: RepositorySettings, workItem: String) async throws {
        try await locks.withLock(repo.repo) { _ = removeStaleLocks(repo, workItem: workItem) }
    }

    /// Pushes the task branch to the remote (the hand-over to whichever replica runs next).
    public func push(
        _ repo: RepositorySettings, workItem: String, expecting: RemoteBranchExpectation = .fastForward
    ) async throws {
        let ref = "refs/heads/\(Self.branch(workItem: workItem))"
        var arguments = ["push", "--quiet"]
        switch expecting {
        case .fastForward: break
        case .absent: arguments.append("--force-with-lease=\(ref):")
        case .at(let sha): arguments.append("--force-with-lease=\(ref):\(sha)")
        }
        // Under the repository's lock: a push updates the clone's remote-tracking ref, which a
        // fetch for another task would otherwise find moved under it ("cannot lock ref").
        _ = try await locks.withLock(repo.repo) {
            try await git.run(
                taskGit(repo, workItem: workItem) + arguments + ["origin", "HEAD:\(ref)"],
                in: worktreePath(repo, workItem: workItem), timeout: .seconds(300))
        }
    }

    /// Commits of the task's worktree after `base` (the head its run started from) that change
    /// something outside the task documents (`docs/tasks/`) and that the default branch does not
    /// have: the work of this run, not the spec and design of earlier stages, nor default-branch
    /// commits an agent rebased onto.
    public func commitsOutsideTaskDocs(
        _ repo: RepositorySettings, workItem: String, since base: String
    ) async throws -> Int {
        Int(
            try await git.run(
                taskGit(repo, workItem: workItem) + [
                    "rev-list", "--count", "HEAD", "^\(base)", "^refs/remotes/origin/\(repo.defaultBranch)", "--", ".",
                    ":(exclude)docs/tasks",
                ],
                in: worktreePath(repo, workItem: workItem)
            ).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Whether `path` (relative to the worktree) is committed at HEAD as a regular file, and
    /// whether it differs from `base`.
    public func committedFile(
        _ repo: RepositorySettings, workItem: String, path: String, since base: String
    ) async throws -> (tracked: Bool, changed: Bool) {
        let git = taskGit(repo, workItem: workItem)
        let worktree = worktreePath(repo, workItem: workItem)
        // `<mode> <type> <object>\t<path>`; regular files are 100644 or 100755.
        let entry = try await self.git.run(git + ["ls-tree", "HEAD", "--", path], in: worktree).output
        let mode = entry.split(separator: " ").first.map(String.init) ?? ""
        guard mode == "100644" || mode == "100755" else { return (false, false) }
        let diff = try await self.git.run(
            git + ["diff", "--quiet", base, "HEAD", "--", path], in: worktree, check: false)
        return (true, diff.exitCode != 0)
    }

    /// Writes everything a run left in the task's worktree since `base` (its own commits and what
    /// it left uncommitted, binary-safe) to `file` as a patch for the operator, without committing
    /// it to the branch. Returns whether there was anything.
    @discardableResult
    public func savePatch(
        _ repo: RepositorySettings, workItem: String, since base: String, to file: String
    ) async throws -> Bool {
        let git = taskGit(repo, workItem: workItem)
        let worktree = worktreePath(repo, workItem: workItem)
        try await removeTaskLocks(repo, workItem: workItem)
        try await self.git.run(git + ["add", "-A"], in: worktree)
        let changed =
            try await self.git.run(git + ["diff", "--cached", "--quiet", base], in: worktree, check: false).exitCode
            != 0
        guard changed else { return false }
        try await self.git.run(git + ["diff", "--cached", "--binary", "--output=\(file)", base], in: worktree)
        return true
    }

    /// Whether this replica's clone of the repository has `sha` (a commit made here, even if it
    /// was never pushed: task worktrees share the clone's objects).
    public func hasCommit(_ repo: RepositorySettings, _ sha: String) async throws -> Bool {
        try await git.run(["git", "cat-file", "-e", "\(sha)^{commit}"], in: clonePath(repo), check: false).exitCode == 0
    }

    /// Points the task's worktree and branch at `sha` (work committed by an earlier try of the job).
    public func reset(_ repo: RepositorySettings, workItem: String, to sha: String) async throws {
        try await git.run(
            taskGit(repo, workItem: workItem) + ["reset", "--quiet", "--hard", sha],
            in: worktreePath(repo, workItem: workItem))
    }

    /// The commit the task's worktree is at.
    public func head(_ repo: RepositorySettings, workItem: String) async throws -> String {
        try await git.run(
            taskGit(repo, workItem: workItem) + ["rev-parse", "HEAD"], in: worktreePath(repo, workItem: workItem)
        )
        .output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The commit a worktree of the orchestrator's own (never an agent's) is at.
    func head(worktree: String) async throws -> String {
        try await git.run(["git", "rev-parse", "HEAD"], in: worktree).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
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
