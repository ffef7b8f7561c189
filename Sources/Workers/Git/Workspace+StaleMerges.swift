import Foundation

extension Workspace {
    /// The folder holding `mergeLocally`'s temporary worktrees (`merge-<8 hex digits>`).
    var mergeWorktreesDirectory: String { "\(root)/worktrees" }

    /// Whether a folder name is one `mergeLocally` gives its temporary worktree; repositories'
    /// folders beside them (`<owner>__<name>`) never match, whatever the owner is called.
    static func isMergeWorktreeName(_ name: String) -> Bool {
        let digits = name.dropFirst("merge-".count)
        return name.hasPrefix("merge-") && digits.count == 8 && digits.allSatisfy(\.isHexDigit)
    }

    /// Removes the temporary merge worktrees of `repo` that a killed merge left behind (folder and
    /// registration in the bare clone); returns the folders removed.
    ///
    /// Merges run under the repository's lock of this process, and the workspace belongs to this
    /// replica alone, so with the lock held no merge worktree of the repository is in use: every
    /// one found is stale, whatever its age (at startup and while running alike). The lock is
    /// taken only when there is something to remove, not to hold up a stage every sweep.
    @discardableResult
    func removeStaleMergeWorktrees(_ repo: RepositorySettings) async throws -> [String] {
        guard !mergeWorktrees(of: repo).isEmpty else { return [] }
        let clone = clonePath(repo)
        return try await locks.withLock(repo.repo) {
            let stale = mergeWorktrees(of: repo)
            for worktree in stale {
                try await git.run(["git", "worktree", "remove", "--force", worktree], in: clone, check: false)
                if Ownership.isOwnedBySelf(worktree) { try? FileManager.default.removeItem(atPath: worktree) }
            }
            // Registrations whose folder is gone (or was never made) go too.
            try await git.run(["git", "worktree", "prune"], in: clone)
            return stale.sorted()
        }
    }

    /// The merge worktrees that belong to `repo`'s clone: registered there (its `worktrees/`
    /// entry names the folder), or a folder whose `.git` file points into the clone.
    private func mergeWorktrees(of repo: RepositorySettings) -> Set<String> {
        let fileManager = FileManager.default
        let registrations = clonePath(repo) + "/worktrees"
        var found = Set<String>()
        for entry in (try? fileManager.contentsOfDirectory(atPath: registrations)) ?? [] {
            guard let gitdir = Self.firstLine(of: "\(registrations)/\(entry)/gitdir") else { continue }
            let worktree = (gitdir as NSString).deletingLastPathComponent
            if (worktree as NSString).deletingLastPathComponent == mergeWorktreesDirectory,
                Self.isMergeWorktreeName((worktree as NSString).lastPathComponent)
            {
                found.insert(worktree)
            }
        }
        for entry in (try? fileManager.contentsOfDirectory(atPath: mergeWorktreesDirectory)) ?? []
        where Self.isMergeWorktreeName(entry) {
            let worktree = "\(mergeWorktreesDirectory)/\(entry)"
            guard let link = Self.firstLine(of: worktree + "/.git"), link.hasPrefix("gitdir: \(registrations)/") else {
                continue
            }
            found.insert(worktree)
        }
        return found
    }

    /// Removes merge worktree folders that no clone can be told from (a merge killed while `git
    /// worktree add` was still writing, or the clone of a repository no longer configured) once
    /// they are older than `age`: no merge lasts that long. Returns the folders removed.
    @discardableResult
    func removeOrphanMergeFolders(olderThan age: TimeInterval, now: Date = Date()) -> [String] {
        let fileManager = FileManager.default
        var removed: [String] = []
        for entry in (try? fileManager.contentsOfDirectory(atPath: mergeWorktreesDirectory)) ?? []
        where Self.isMergeWorktreeName(entry) {
            let worktree = "\(mergeWorktreesDirectory)/\(entry)"
            let attributes = try? fileManager.attributesOfItem(atPath: worktree)
            guard attributes?[.type] as? FileAttributeType == .typeDirectory, Ownership.isOwnedBySelf(worktree),
                let modified = attributes?[.modificationDate] as? Date, now.timeIntervalSince(modified) > age
            else { continue }
            if (try? fileManager.removeItem(atPath: worktree)) != nil { removed.append(worktree) }
        }
        return removed
    }

    /// The first line of a small file of git's, trimmed; nil when unreadable.
    private static func firstLine(of path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: "\n", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
