import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a task document an agent committed (`docs/tasks/<WI>/spec.md`, …) without trusting it.
///
/// The agent controls the worktree, so the document may be a symbolic link to `/dev/zero` (memory
/// exhausted), to a FIFO (a thread blocked forever) or to a credentials file (its start leaked into
/// the gate's message, which goes to Telegram and Plane). Only a regular file reached through real
/// directories below the worktree is read: every component is opened with `O_NOFOLLOW` relative to
/// its parent, so no symbolic link is ever followed, and any symbolic link is refused (the simplest
/// rule that cannot leave the worktree). The file is opened non-blocking, capped at `maximumBytes`,
/// and read on a NIO thread-pool thread so a slow disk never stalls the cooperative pool.
public enum TaskDocumentReader {
    /// The largest task document a gate reads (256 KiB): far above any real spec, far below harm.
    public static let maximumBytes = 262_144

    /// Why a document was refused. The description names the path relative to the worktree and
    /// the reason, never any of the file's content.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case missing(path: String)
        case empty(path: String)
        case symbolicLink(path: String, component: String)
        case notADirectory(path: String, component: String)
        case notARegularFile(path: String, kind: String)
        case tooLarge(path: String, size: Int, limit: Int)
        case notUTF8(path: String)
        case unreadable(path: String, reason: String)

        public var description: String {
            switch self {
            case .missing(let path):
                // The wording agents and tests have seen since the first gate.
                return "\(path) is missing or empty"
            case .empty(let path):
                return "\(path) is empty"
            case .symbolicLink(let path, let component):
                let which = component == path ? "it" : component
                return "\(path) is refused: \(which) is a symbolic link (task documents must be regular files "
                    + "committed in the worktree; symbolic links are never followed)"
            case .notADirectory(let path, let component):
                return "\(path) is missing: \(component) is not a directory"
            case .notARegularFile(let path, let kind):
                return "\(path) is not a regular file (it is a \(kind))"
            case .tooLarge(let path, let size, let limit):
                return "\(path) is \(size) bytes; the limit is \(limit)"
            case .notUTF8(let path):
                return "\(path) is not valid UTF-8 text"
            case .unreadable(let path, let reason):
                return "\(path) cannot be read: \(reason)"
            }
        }
    }

    /// The text of `relativePath` below `worktree`, read off the cooperative pool, or why not.
    public static func read(
        _ relativePath: String, in worktree: String, limit: Int = maximumBytes
    ) async -> Result<String, Refusal> {
        do {
            return try await NIOThreadPool.singleton.runIfActive {
                readBlocking(relativePath, in: worktree, limit: limit)
            }
        } catch {
            return .failure(.unreadable(path: relativePath, reason: "\(error)"))
        }
    }

    /// The same, on the calling thread: every call it makes returns promptly (no blocking open,
    /// at most `limit + 1` bytes read from a regular file).
    static func readBlocking(_ relativePath: String, in worktree: String, limit: Int) -> Result<String, Refusal> {
        let components = relativePath.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !components.isEmpty, !components.contains(".."), !components.contains(".") else {
            return .failure(.unreadable(path: relativePath, reason: "not a plain relative path"))
        }
        var directory = open(worktree, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else {
            return .failure(.unreadable(path: relativePath, reason: "the worktree cannot be opened"))
        }
        for (index, name) in components.enumerated() {
            let prefix = components[...index].joined(separator: "/")
            let isLast = index == components.count - 1
            // lstat first, so a FIFO or a device is never opened (opening some devices acts).
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                let code = errno
                close(directory)
                return .failure(code == ENOENT ? .missing(path: relativePath) : unreadable(relativePath, code))
            }
            let kind = info.st_mode & S_IFMT
            guard kind != S_IFLNK else {
                close(directory)
                return .failure(.symbolicLink(path: relativePath, component: prefix))
            }
            guard isLast else {
                guard kind == S_IFDIR else {
                    close(directory)
                    return .failure(.notADirectory(path: relativePath, component: prefix))
                }
                // O_NOFOLLOW: swapped for a link since the lstat, the open fails instead of following.
                let next = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                let code = errno
                close(directory)
                guard next >= 0 else { return .failure(refusal(relativePath, prefix, code)) }
                directory = next
                continue
            }
            guard kind == S_IFREG else {
                close(directory)
                return .failure(.notARegularFile(path: relativePath, kind: kindName(kind)))
            }
            // O_NONBLOCK: a FIFO swapped in since the lstat opens at once (and is refused below).
            let file = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            let code = errno
            close(directory)
            guard file >= 0 else { return .failure(refusal(relativePath, prefix, code)) }
            defer { close(file) }
            return readRegularFile(file, path: relativePath, limit: limit)
        }
        close(directory)
        return .failure(.missing(path: relativePath))
    }

    private static func readRegularFile(_ file: Int32, path: String, limit: Int) -> Result<String, Refusal> {
        var info = stat()
        guard fstat(file, &info) == 0 else { return .failure(unreadable(path, errno)) }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG else { return .failure(.notARegularFile(path: path, kind: kindName(kind))) }
        guard Int(info.st_size) <= limit else {
            return .failure(.tooLarge(path: path, size: Int(info.st_size), limit: limit))
        }
        // One byte more than the limit tells a file that grew since the fstat.
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: limit + 1) { buffer, count in
            count = 0
            while count < buffer.count {
                let got = systemRead(file, buffer.baseAddress! + count, buffer.count - count)
                if got > 0 {
                    count += got
                } else if got == 0 {
                    break
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
        }
        guard failure == 0 else { return .failure(unreadable(path, failure)) }
        guard bytes.count <= limit else { return .failure(.tooLarge(path: path, size: bytes.count, limit: limit)) }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .failure(.notUTF8(path: path)) }
        guard text.contains(where: { !$0.isWhitespace }) else { return .failure(.empty(path: path)) }
        return .success(text)
    }

    private static func refusal(_ path: String, _ component: String, _ code: Int32) -> Refusal {
        switch code {
        case ELOOP: return .symbolicLink(path: path, component: component)
        case ENOENT: return .missing(path: path)
        case ENOTDIR: return .notADirectory(path: path, component: component)
        default: return unreadable(path, code)
        }
    }

    private static func unreadable(_ path: String, _ code: Int32) -> Refusal {
        .unreadable(path: path, reason: String(cString: strerror(code)))
    }

    private static func kindName(_ kind: mode_t) -> String {
        switch kind {
        case S_IFDIR: return "directory"
        case S_IFIFO: return "FIFO"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        case S_IFSOCK: return "socket"
        default: return "special file"
        }
    }
}

/// `read(2)`, named apart from `TaskDocumentReader.read`.
private func systemRead(_ file: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.read(file, buffer, count)
    #else
    Darwin.read(file, buffer, count)
    #endif
}
