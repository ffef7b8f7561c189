import Foundation
import Store

#if canImport(Glibc)
import Glibc
#endif

/// The file-ownership check's walk of a work dir, without policy: which entries are not owned by
/// the service's user, the command that gives them back, and the opt-in chown.
///
/// A work dir that changed hands (a replica once run as root, a restored backup, someone's manual
/// `git fetch` as another user) makes git refuse the clones ("detected dubious ownership") or
/// fail with EACCES, and every stage of every task on the host fails at `prepare`. The walk is
/// bounded (`maxEntries` entries, `maxDepth` levels) so a huge tree cannot stall a replica, goes
/// by directory descriptors with `O_NOFOLLOW` and `AT_SYMLINK_NOFOLLOW` (a link is examined, never
/// followed, so the chown cannot be steered outside the tree), and follows only the work dir
/// itself, which the operator configured and may well be a link.
public enum FileOwnership {
    /// How deep the walk descends: each level holds one directory open.
    static let maxDepth = 64
    /// How many mismatched entries a scan names.
    public static let sampleLimit = 10

    /// Whose entries are fine.
    public struct Expectation: Sendable, Equatable {
        /// The service's user and group: the owner healing gives.
        public var uid: UInt32
        public var gid: UInt32
        /// The agents' configured users (`agents.<role>.user`): a worktree is theirs during a run
        /// and a task's home stays theirs, by design.
        public var agentUIDs: Set<UInt32>

        public init(uid: UInt32, gid: UInt32, agentUIDs: Set<UInt32> = []) {
            self.uid = uid
            self.gid = gid
            self.agentUIDs = agentUIDs
        }

        /// The running service's effective user and group.
        public static func service(agentUIDs: Set<UInt32> = []) -> Expectation {
            Expectation(uid: geteuid(), gid: getegid(), agentUIDs: agentUIDs)
        }
    }

    /// Scans `workdir` (lstat of every entry, up to `maxEntries`). A work dir that does not exist
    /// yet is clean: it is created on first use, by the service.
    public static func scan(
        _ workdir: String, expecting expectation: Expectation, maxEntries: Int, now: Date = Date()
    ) -> OwnershipScan {
        let started = ContinuousClock.now
        var scan = OwnershipScan(
            workdir: workdir, uid: expectation.uid, gid: expectation.gid, maxEntries: maxEntries, scannedAt: now)
        var walker = Walker(budget: maxEntries)
        do {
            try walker.walk(workdir) { entry in
                scan.scanned += 1
                if entry.uid == expectation.uid { return }
                if expectation.agentUIDs.contains(entry.uid) {
                    scan.agentOwned += 1
                    return
                }
                scan.mismatched += 1
                if scan.samples.count < sampleLimit {
                    scan.samples.append(.init(path: entry.path, uid: entry.uid, gid: entry.gid))
                }
            }
        } catch {
            scan.error = error.description
        }
        scan.unreadable = walker.unreadable
        scan.truncated = walker.truncated
        let elapsed = ContinuousClock.now - started
        scan.durationMs = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        return scan
    }

    /// What a chown pass did.
    public struct Normalization: Sendable, Equatable {
        /// Entries given back to the service's user.
        public var changed = 0
        /// Entries whose chown failed.
        public var failed = 0
        /// The pass stopped at its bound: run it again, or the healing command.
        public var truncated = false
        /// The first failure, to say why.
        public var firstError: String?
    }

    /// Gives every mismatched entry (within the bound; the agents' users' entries excepted) to the
    /// expected owner with `fchownat(…, AT_SYMLINK_NOFOLLOW)`. Only root can: the caller checks.
    public static func normalize(
        _ workdir: String, expecting expectation: Expectation, maxEntries: Int
    ) -> Normalization {
        var result = Normalization()
        var walker = Walker(budget: maxEntries)
        do {
            try walker.walk(workdir) { entry in
                guard entry.uid != expectation.uid, !expectation.agentUIDs.contains(entry.uid) else { return }
                // The work dir itself by path (it may be a link the operator chose: its target is
                // meant); everything below relative to its open parent, never followed.
                let status =
                    entry.parent == AT_FDCWD
                    ? chown(entry.path, expectation.uid, expectation.gid)
                    : fchownat(entry.parent, entry.name, expectation.uid, expectation.gid, AT_SYMLINK_NOFOLLOW)
                if status == 0 {
                    result.changed += 1
                } else if errno != ENOENT {
                    result.failed += 1
                    if result.firstError == nil {
                        result.firstError = "chown \(entry.path): \(String(cString: strerror(errno)))"
                    }
                }
            }
        } catch {
            result.firstError = result.firstError ?? error.description
        }
        result.truncated = walker.truncated
        return result
    }

    /// The command an operator runs to give the work dir back to the service's user, quoted for
    /// a POSIX shell; `sudo` in front unless the service is root. `chown -R` changes links
    /// themselves and does not follow them below the named directory.
    public static func healingCommand(workdir: String, uid: UInt32, gid: UInt32, privileged: Bool) -> String {
        (privileged ? "" : "sudo ") + "chown -R \(uid):\(gid) \(shellQuoted(workdir))"
    }

    /// `text` as one word for a POSIX shell: as is when it is made of characters no shell treats
    /// specially, else in single quotes (a quote inside as `'\''`).
    static func shellQuoted(_ text: String) -> String {
        let plain = CharacterSet(
            charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+=,-")
        if !text.isEmpty, !text.hasPrefix("-"), text.unicodeScalars.allSatisfy(plain.contains) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    /// The line of `error` that shows a local ownership or permission problem under `workdir` —
    /// git's "detected dubious ownership", EACCES/EPERM on a path of the work dir — or nil. A
    /// remote's "Permission denied (publickey)" is not one: it names no local path.
    public static func ownershipEvidence(in error: any Error, under workdir: String) -> String? {
        if let posix = error as? POSIXError, posix.code == .EACCES || posix.code == .EPERM {
            return "\(posix)"
        }
        let nsError = error as NSError
        let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError
        if let posix = [nsError, underlying].compactMap({ $0 }).first(where: {
            $0.domain == NSPOSIXErrorDomain && ($0.code == Int(EACCES) || $0.code == Int(EPERM))
        }) {
            let path = nsError.userInfo[NSFilePathErrorKey] as? String
            return "\(path.map { "\($0): " } ?? "")\(String(cString: strerror(Int32(posix.code))))"
        }
        if let cocoa = error as? CocoaError, cocoa.code == .fileWriteNoPermission || cocoa.code == .fileReadNoPermission
        {
            return "\(cocoa.filePath.map { "\($0): " } ?? "")permission denied"
        }
        let lines = "\(error)".split(whereSeparator: \.isNewline).map(String.init)
        let line = lines.first { line in
            let lower = line.lowercased()
            if lower.contains("detected dubious ownership") || lower.contains("insufficient permission for adding") {
                return true
            }
            return line.contains(workdir)
                && (lower.contains("permission denied") || lower.contains("operation not permitted"))
        }
        // A failed command's line starts with its argv: git's own words are what helps.
        guard let line else { return nil }
        let start = ["fatal: ", "error: "].compactMap { line.range(of: $0)?.lowerBound }.min()
        return String(line[(start ?? line.startIndex)...]).trimmingCharacters(in: .whitespaces)
    }
}

/// The walk itself: entries in directory order, depth first, each one `lstat`ed exactly once.
private struct Walker {
    /// One entry: its owner, and how to name it without following anything (`parent` is
    /// `AT_FDCWD` for the work dir itself, named by `path`).
    struct Entry {
        let parent: Int32
        let name: String
        let path: String
        let uid: UInt32
        let gid: UInt32
    }

    /// The work dir could not be examined at all.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Entries left to visit.
    var budget: Int
    var truncated = false
    var unreadable = 0

    private static let typeMask: mode_t = 0o170000
    private static let directoryType: mode_t = 0o040000

    /// Visits `root` (followed: the configured work dir may be a link) and, if it is a directory,
    /// everything below it (never followed). A missing root visits nothing.
    mutating func walk(_ root: String, visit: (Entry) -> Void) throws(Failure) {
        var info = stat()
        guard stat(root, &info) == 0 else {
            if errno == ENOENT { return }
            throw Failure(description: "cannot examine \(root): \(String(cString: strerror(errno)))")
        }
        guard budget > 0 else {
            truncated = true
            return
        }
        budget -= 1
        visit(Entry(parent: AT_FDCWD, name: root, path: root, uid: info.st_uid, gid: info.st_gid))
        guard info.st_mode & Self.typeMask == Self.directoryType else { return }
        let directory = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else {
            unreadable += 1
            return
        }
        contents(of: directory, path: root.hasSuffix("/") ? String(root.dropLast()) : root, depth: 1, visit: visit)
    }

    /// Visits the entries of the open directory `descriptor` (taken over and closed), recursively.
    private mutating func contents(of descriptor: Int32, path: String, depth: Int, visit: (Entry) -> Void) {
        guard let stream = fdopendir(descriptor) else {
            close(descriptor)
            unreadable += 1
            return
        }
        defer { closedir(stream) }
        let parent = dirfd(stream)
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            guard budget > 0 else {
                truncated = true
                return
            }
            var info = stat()
            // Gone since it was listed (a worktree being removed): nothing to say about it.
            guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            budget -= 1
            let childPath = path + "/" + name
            visit(Entry(parent: parent, name: name, path: childPath, uid: info.st_uid, gid: info.st_gid))
            guard info.st_mode & Self.typeMask == Self.directoryType else { continue }
            guard depth < FileOwnership.maxDepth else {
                truncated = true
                continue
            }
            let child = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else {
                unreadable += 1
                continue
            }
            contents(of: child, path: childPath, depth: depth + 1, visit: visit)
            if truncated, budget == 0 { return }
        }
    }
}
