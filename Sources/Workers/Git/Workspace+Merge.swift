import Foundation

/// The merge of the no-Gitea mode (the remote is a plain git repository), and the task branch's
/// deletion after it.
extension Workspace {
    /// How a local merge ended.
    public enum LocalMerge: Sendable, Equatable {
        /// Merged (now or by an earlier try) as this commit on the default branch.
        case merged(String)
        /// The branch does not merge cleanly: nothing was pushed; git's account of the conflict.
        case conflict(String)
    }

    /// Merges the task branch into the default branch with a merge commit and pushes it (the
    /// no-Gitea mode: the remote is a plain git repository). Idempotent: a branch already merged
    /// is not merged twice, and its merge commit is found again (not the default branch's tip,
    /// which may have moved on since).
    public func mergeLocally(_ repo: RepositorySettings, workItem: String) async throws -> LocalMerge {
        let clone = clonePath(repo)
        let branch = Self.branch(workItem: workItem)
        let merging = "\(root)/worktrees/merge-\(UUID().uuidString.prefix(8))"
        return try await locks.withLock(repo.repo) {
            try await fetch(repo)
            try await git.run(
                ["git", "worktree", "add", "--detach", merging, "origin/\(repo.defaultBranch)"], in: clone)
            defer { try? FileManager.default.removeItem(atPath: merging) }
            let result = try await merge(branch, workItem: workItem, into: repo.defaultBranch, in: merging)
            try await git.run(["git", "worktree", "remove", "--force", merging], in: clone, check: false)
            return result
        }
    }

    private func merge(
        _ branch: String, workItem: String, into defaultBranch: String, in merging: String
    ) async throws -> LocalMerge {
        let merged =
            try await git.run(
                ["git", "merge-base", "--is-ancestor", "origin/\(branch)", "HEAD"], in: merging, check: false
            ).exitCode == 0
        if merged {
            // The first merge commit on the way from the branch tip to the default branch
            // brought it in; without one the tip itself is on the default branch.
            let merges = try await git.run(
                ["git", "rev-list", "--ancestry-path", "--merges", "--reverse", "origin/\(branch)..HEAD"], in: merging
            ).output
            if let first = merges.split(whereSeparator: \.isNewline).first { return .merged(String(first)) }
            return .merged(
                try await git.run(["git", "rev-parse", "origin/\(branch)"], in: merging).output
                    .trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let attempt = try await git.run(
            ["git", "merge", "--no-ff", "--quiet", "-m", "Merge \(branch) (\(workItem))", "origin/\(branch)"],
            in: merging, check: false)
        guard attempt.exitCode == 0 else {
            let conflicted = try await git.run(
                ["git", "diff", "--name-only", "--diff-filter=U"], in: merging, check: false
            ).output
            try await git.run(["git", "merge", "--abort"], in: merging, check: false)
            let files = conflicted.split(whereSeparator: \.isNewline).prefix(20).joined(separator: ", ")
            return .conflict(
                "\(branch) does not merge cleanly into \(defaultBranch)"
                    + (files.isEmpty ? ": \(attempt.output.suffix(500))" : "; conflicts in \(files)"))
        }
        try await git.run(
            ["git", "push", "--quiet", "origin", "HEAD:refs/heads/\(defaultBranch)"], in: merging,
            timeout: .seconds(300))
        return .merged(try await head(worktree: merging))
    }

    /// Deletes the task branch on the remote after its merge (the no-Gitea mode; Gitea deletes it
    /// itself with `delete_branch_after_merge`). A branch already gone is not an error.
    public func deleteRemoteBranch(_ repo: RepositorySettings, workItem: String) async throws {
        let ref = "refs/heads/\(Self.branch(workItem: workItem))"
        try await locks.withLock(repo.repo) {
            let listed = try await git.run(
                ["git", "ls-remote", "origin", ref], in: clonePath(repo), timeout: .seconds(120)
            ).output
            guard !listed.isEmpty else { return }
            try await git.run(
                ["git", "push", "--quiet", "origin", "--delete", ref], in: clonePath(repo), timeout: .seconds(300))
        }
    }
}
