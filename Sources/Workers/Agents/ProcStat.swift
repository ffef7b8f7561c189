import Foundation

/// Reads `/proc/<pid>/stat` (Linux): a process's start time and CPU, for agent runs on this host.
public enum ProcStat {
    /// `starttime` of `/proc/<pid>/stat` (clock ticks after boot), nil when there is no such
    /// process: with the pid it names one process, so a recycled pid is not mistaken for it.
    public static func startTime(pid: Int) -> Int64? { procStatField(pid: pid, 19).flatMap { Int64($0) } }

    /// User + system CPU of a process in clock ticks (`/proc/<pid>/stat` utime + stime).
    public static func cpuTicks(pid: Int) -> Int64? {
        guard let user = procStatField(pid: pid, 11).flatMap({ Int64($0) }),
            let system = procStatField(pid: pid, 12).flatMap({ Int64($0) })
        else { return nil }
        return user + system
    }

    /// A field of `/proc/<pid>/stat` counted after the command name (0 = state, field 3 of the
    /// line); the command name may itself contain spaces and parentheses.
    static func procStatField(pid: Int, _ index: Int) -> Substring? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return index < fields.count ? fields[index] : nil
    }
}
