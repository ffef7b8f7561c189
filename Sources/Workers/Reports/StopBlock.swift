import Store

/// The `stop` block: the STOP label, and what cancelling has done (cancelled tasks and stage
/// jobs, merges a cancel waits for, the latest 10 cancellations).
public struct StopBlock: QueueReportBlock {
    /// The block's figures.
    public typealias Body = LabelledSummary<StopSummary>

    public let key = "stop"
    let label: String

    public init(label: String) {
        self.label = label
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(label: label, summary: try await TaskStore(pool: pool).stopSummary(recent: 10))
    }
}
