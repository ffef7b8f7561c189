import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Recursive ownership change: hands a task's worktree to the user an agent runs as, and back
/// afterwards. The walk goes by directory descriptors (`openat` with `O_NOFOLLOW`, `fchownat`
/// with `AT_SYMLINK_NOFOLLOW`), never by path: a process of the agent's user that swaps a
/// directory for a symbolic link during the walk cannot make the orchestrator chown (as root) a
/// file outside the tree, which a path-based `lchown` of `dir/entry` would follow.
enum Ownership {
    /// A chown that failed.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Changes the owner of `path` (never following it if it is a link) and everything under it.
    static func change(_ path: String, to user: uid_t, _ group: gid_t) throws {
        guard lchown(path, user, group) == 0 else {
            throw Failure(description: "cannot chown \(path) to \(user):\(group): \(String(cString: strerror(errno)))")
        }
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { return }  // not a directory (or a link): done
        try changeContents(of: directory, path: path, to: user, group)
    }

    /// Whether `path` (not followed) belongs to this process's user: only such trees are removed
    /// by the orchestrator, as removing another user's tree could be steered by that user.
    static func isOwnedBySelf(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_uid == geteuid()
    }

    /// Changes every entry of the open directory `descriptor` (taken over and closed), recursively.
    private static func changeContents(of descriptor: Int32, path: String, to user: uid_t, _ group: gid_t) throws {
        guard let stream = fdopendir(descriptor) else {
            close(descriptor)
            throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            if fchownat(descriptor, name, user, group, AT_SYMLINK_NOFOLLOW) != 0, errno != ENOENT {
                let reason = String(cString: strerror(errno))
                throw Failure(description: "cannot chown \(path)/\(name) to \(user):\(group): \(reason)")
            }
            let child = openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 { try changeContents(of: child, path: "\(path)/\(name)", to: user, group) }
        }
    }
}
