#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A file system's fill level, as `df` shows it: used over what non-root users can reach.
public struct DiskUsage: Sendable, Equatable {
    public let totalBytes: Int64
    /// Bytes available to unprivileged processes (what an agent or a build can still write).
    public let freeBytes: Int64
    public let usedPercent: Double

    public init(totalBytes: Int64, freeBytes: Int64, usedPercent: Double) {
        self.totalBytes = totalBytes
        self.freeBytes = freeBytes
        self.usedPercent = usedPercent
    }

    /// Could not measure a path (`statvfs` failed: it does not exist, no permission).
    public struct Unmeasurable: Error, CustomStringConvertible {
        public let path: String
        public let errno: Int32
        public var description: String { "statvfs(\(path)) failed: errno \(errno)" }
    }

    /// Measures the file system holding `path` with `statvfs(3)`.
    public static func measure(path: String) throws -> DiskUsage {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { throw Unmeasurable(path: path, errno: errno) }
        let unit = Int64(stats.f_frsize)
        let total = Int64(stats.f_blocks) * unit
        let used = (Int64(stats.f_blocks) - Int64(stats.f_bfree)) * unit
        let available = Int64(stats.f_bavail) * unit
        let reachable = used + available
        return DiskUsage(
            totalBytes: total, freeBytes: available,
            usedPercent: reachable > 0 ? Double(used) * 100 / Double(reachable) : 0)
    }
}
