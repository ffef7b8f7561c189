import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Workspace {
    /// How old a git lock file must be before any task's preparation removes it. Git holds its
    /// locks for the length of one command — milliseconds for a ref or the index, seconds for a
    /// large `add` — but agents run their own git in other tasks' worktrees of the same clone at
    /// any time, and their locks (`worktrees/<WI>/index.lock`, `refs/heads/orch/<WI>.lock`, even
    /// `packed-refs.lock` or `config.lock`) look exactly like a killed git's. Ten minutes is far
    /// beyond any git command the orchestrator or an agent runs, and short enough that a task
    /// stranded by a kill is free again on its next retry.
    static let staleLockAge: TimeInterval = 10 * 60

    /// Removes git lock files a killed git left in the repository's bare clone, which would make
    /// every later fetch, worktree change or commit fail with "Unable to create '….lock': File
    /// exists". Call with the repository's lock held (no git of this workspace runs in the clone).
    ///
    /// Removed: any `*.lock` older than `staleLockAge` anywhere in the clone (agents' git may be
    /// running in other tasks' worktrees, so younger ones could be live), and, for `workItem` (the
    /// task being prepared, whose agent is not running: its stage holds the task), every lock in
    /// its worktree's administrative directory and its branch's ref lock, whatever their age.
    /// Only regular files are unlinked, by directory descriptor, and no symbolic link is followed:
    /// an agent can write into the clone and might plant a link named `x.lock` or swap a folder.
    /// Returns the paths removed.
    @discardableResult
    func removeStaleLocks(_ repo: RepositorySettings, workItem: String? = nil, now: Date = Date()) -> [String] {
        let clone = clonePath(repo)
        let root = open(clone, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { return [] }  // no clone yet
        var walk = StaleLockWalk(staleBefore: now.timeIntervalSince1970 - Self.staleLockAge)
        if let workItem {
            walk.alwaysStale = [
                "worktrees/\(workItem)",
                "refs/heads/\(Self.branch(workItem: workItem)).lock",
            ]
        }
        walk.remove(in: root, path: clone, relative: "")
        return walk.removed
    }
}

/// One walk of a clone for stale lock files (see `Workspace.removeStaleLocks`).
private struct StaleLockWalk {
    /// Modification time (seconds since 1970) before which a lock is stale.
    let staleBefore: TimeInterval
    /// Paths relative to the clone: a lock at one of them, or under a folder named here, is stale
    /// at any age.
    var alwaysStale: [String] = []
    var removed: [String] = []

    init(staleBefore: TimeInterval) {
        self.staleBefore = staleBefore
    }

    /// Walks the open directory `descriptor` (taken over and closed), recursively.
    mutating func remove(in descriptor: Int32, path: String, relative: String) {
        guard let stream = fdopendir(descriptor) else {
            close(descriptor)
            return
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let relativeName = relative.isEmpty ? name : "\(relative)/\(name)"
            // Objects hold no lock that stops a fetch or commit (a commit-graph or multi-pack-index
            // lock only makes git warn), and are by far the largest part of a clone.
            if relativeName == "objects" { continue }
            var info = stat()
            guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 { remove(in: child, path: "\(path)/\(name)", relative: relativeName) }
            case S_IFREG where name.hasSuffix(".lock"):
                let modified = TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9
                guard modified < staleBefore || isAlwaysStale(relativeName) else { continue }
                if unlinkat(descriptor, name, 0) == 0 { removed.append("\(path)/\(name)") }
            default:
                continue  // links, FIFOs, sockets: never touched
            }
        }
    }

    private func isAlwaysStale(_ relativeName: String) -> Bool {
        alwaysStale.contains { relativeName == $0 || relativeName.hasPrefix($0 + "/") }
    }
}
