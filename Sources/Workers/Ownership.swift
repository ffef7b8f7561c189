import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Recursive `lchown`: hands a task's worktree and home to the user an agent runs as, and the
/// worktree back afterwards. Symbolic links are changed themselves, never followed, so a link
/// an agent planted cannot make the orchestrator chown a file outside the tree.
enum Ownership {
    /// A chown that failed.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Changes the owner of `path` and everything under it.
    static func change(_ path: String, to user: uid_t, _ group: gid_t) throws {
        guard lchown(path, user, group) == 0 else {
            throw Failure(description: "cannot chown \(path) to \(user):\(group): \(String(cString: strerror(errno)))")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
              (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) == nil
        else { return }
        // The enumerator does not descend into symbolic links to directories.
        guard let entries = FileManager.default.enumerator(atPath: path) else { return }
        for case let entry as String in entries {
            let full = "\(path)/\(entry)"
            if lchown(full, user, group) != 0, errno != ENOENT {
                let reason = String(cString: strerror(errno))
                throw Failure(description: "cannot chown \(full) to \(user):\(group): \(reason)")
            }
        }
    }
}
