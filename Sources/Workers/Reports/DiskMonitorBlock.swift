import Store

/// The `disk_monitor` block: the kill switch and settings of the disk watchdog and, per host and
/// path, the last measurement (every replica's, since each one measures its own disks).
public struct DiskMonitorBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope = QueueReportScope.all
        let thresholdPercent: Double
        let hysteresisPercent: Double
        let intervalSeconds: Double
        let paths: [DiskMonitorStore.Measurement]
    }

    public let key = "disk_monitor"
    let enabled: Bool
    let settings: DiskMonitor.Settings

    public init(enabled: Bool, settings: DiskMonitor.Settings) {
        self.enabled = enabled
        self.settings = settings
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(
            enabled: enabled, thresholdPercent: settings.threshold, hysteresisPercent: settings.hysteresis,
            intervalSeconds: settings.interval.seconds, paths: try await DiskMonitorStore(pool: pool).measurements())
    }
}
