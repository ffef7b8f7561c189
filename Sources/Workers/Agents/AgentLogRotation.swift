import Foundation

/// Deletes old per-run agent logs (`<ORCH_WORKDIR>/logs/*.log`, each with the `.patch` a failed
/// run's changes were kept in): older than a retention, and beyond a count (oldest first). The
/// reaper's `agent-log-prune` on every replica, since the logs are on each replica's own disk.
public enum AgentLogRotation {
    /// The most logs kept, whatever their age: a burst of runs cannot fill the disk before the
    /// retention ends.
    public static let defaultMaxLogs = 2000

    /// Deletes the logs in `directory` last written more than `retention` ago, and all but the
    /// newest `maxCount`; a log's patch goes with it, and a patch whose log is gone goes once it
    /// is as old. Other files are left alone. Returns how many files were deleted.
    @discardableResult
    public static func prune(
        directory: String, olderThan retention: Duration, keep maxCount: Int = defaultMaxLogs, now: Date = Date()
    ) -> Int {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: directory) else { return 0 }
        func modified(_ name: String) -> Date? {
            (try? manager.attributesOfItem(atPath: "\(directory)/\(name)"))?[.modificationDate] as? Date
        }
        let logs = names.filter { $0.hasSuffix(".log") }.compactMap { name in modified(name).map { (name, $0) } }
            .sorted { $0.1 > $1.1 }
        let cutoff = now.addingTimeInterval(-retention.seconds)
        var deleted = 0
        func delete(_ name: String) {
            if (try? manager.removeItem(atPath: "\(directory)/\(name)")) != nil { deleted += 1 }
        }
        let present = Set(names)
        for (index, (name, written)) in logs.enumerated() where index >= maxCount || written < cutoff {
            delete(name)
            if present.contains(name + ".patch") { delete(name + ".patch") }
        }
        for name in names where name.hasSuffix(".log.patch") && !present.contains(String(name.dropLast(6))) {
            if let written = modified(name), written < cutoff { delete(name) }
        }
        return deleted
    }
}
