import Logging
import ServiceLifecycle
import Store

/// The disk watchdog, on every replica: every `interval` it measures each path's file system
/// (clones, worktrees, logs and build caches fill disks silently until a stage fails with
/// ENOSPC) and alerts once when one reaches the threshold and once when it is back below it less
/// the hysteresis. The alert state is in `disk_monitor`, per host and path, so a restart neither
/// repeats an alert nor loses the all-clear.
public struct DiskMonitor: Service {
    /// What the watchdog watches and when it alerts.
    public struct Settings: Sendable {
        public var paths: [String]
        /// Percent used at which a path alerts.
        public var threshold: Double
        /// Points below the threshold a path must fall to before the all-clear.
        public var hysteresis: Double
        public var interval: Duration

        public init(paths: [String], threshold: Double, hysteresis: Double = 5, interval: Duration) {
            self.paths = paths
            self.threshold = threshold
            self.hysteresis = hysteresis
            self.interval = interval
        }
    }

    let settings: Settings
    let host: String
    let replicaID: String
    let store: DiskMonitorStore
    let alerts: Alerts
    let measure: @Sendable (String) throws -> DiskUsage
    let logger: Logger

    /// `measure` is `DiskUsage.measure` in production; tests pass fill levels of their own.
    public init(
        settings: Settings, host: String, replicaID: String, pool: ConnectionPool, alerts: Alerts,
        measure: @escaping @Sendable (String) throws -> DiskUsage = DiskUsage.measure(path:), logger: Logger
    ) {
        self.settings = settings
        self.host = host
        self.replicaID = replicaID
        store = DiskMonitorStore(pool: pool)
        self.alerts = alerts
        self.measure = measure
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await check()
                try? await Task.sleep(for: settings.interval)
            }
        }
    }

    /// Measures every path once and raises the alerts their changes call for; returns the changes.
    /// Errors are logged, never thrown: one unreadable path or a database blip does not stop it.
    @discardableResult
    public func check() async -> [(path: String, change: DiskFill.Change)] {
        var changes: [(path: String, change: DiskFill.Change)] = []
        for path in settings.paths {
            do {
                let usage: DiskUsage
                do {
                    usage = try measure(path)
                } catch {
                    logger.warning("could not measure a disk", metadata: ["disk.path": "\(path)", "error": "\(error)"])
                    try await store.recordError(
                        host: host, path: path, replicaID: replicaID, threshold: settings.threshold, error: "\(error)")
                    continue
                }
                guard
                    let change = try await store.record(
                        host: host, path: path, replicaID: replicaID, usedPercent: usage.usedPercent,
                        totalBytes: usage.totalBytes, freeBytes: usage.freeBytes, threshold: settings.threshold,
                        hysteresis: settings.hysteresis)
                else { continue }
                changes.append((path, change))
                await raise(change, path: path, usage: usage)
            } catch {
                logger.warning(
                    "could not record a disk measurement", metadata: ["disk.path": "\(path)", "db.error": "\(error)"])
            }
        }
        return changes
    }

    private func raise(_ change: DiskFill.Change, path: String, usage: DiskUsage) async {
        let percent = (usage.usedPercent * 10).rounded() / 10
        let free = usage.freeBytes >> 20
        let metadata: Logger.Metadata = [
            "disk.path": "\(path)", "disk.host": "\(host)", "disk.used_percent": "\(percent)",
            "disk.free_mib": "\(free)",
        ]
        switch change {
        case .crossed:
            logger.error("disk filling up", metadata: metadata)
            await alerts.raise(
                "💾 Disk \(path) on \(host) is \(percent)% full (threshold \(settings.threshold)%, \(free) MiB free)",
                key: "disk:\(host):\(path):crossed")
        case .recovered:
            logger.notice("disk back below its threshold", metadata: metadata)
            await alerts.raise(
                "✅ Disk \(path) on \(host) is back to \(percent)% (threshold \(settings.threshold)%)",
                key: "disk:\(host):\(path):recovered")
        }
    }
}
