import Store

/// The `auto_labels` block: the label names that drive behaviour and their kill switch
/// (`ORCH_AUTO_LABELS_ENABLED`), with how many open tasks each label put on its path.
public struct AutoLabelsBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope: String
        let labels: [String: String]
        /// Tasks not finished that run without approval (`auto`) and on the bug track.
        let autoTasks: Int
        let bugTrackTasks: Int
    }

    public let key = "auto_labels"
    let labels: LabelSettings

    public init(labels: LabelSettings) {
        self.labels = labels
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let counts = try await TaskStore(pool: pool).openTaskLabelCounts()
        return Body(
            enabled: labels.enabled, scope: QueueReportScope.all,
            labels: ["auto": labels.auto, "bug": labels.bug, "stop": labels.stop], autoTasks: counts.auto,
            bugTrackTasks: counts.bug)
    }
}
