import Store

/// The `bug_fast_track` block: the bug label, bug-track tasks by status, how many skipped
/// architecture, and escalations to the full track.
public struct BugFastTrackBlock: QueueReportBlock {
    /// The block's figures.
    public typealias Body = LabelledSummary<BugTrackSummary>

    public let key = "bug_fast_track"
    let label: String

    public init(label: String) {
        self.label = label
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(label: label, summary: try await TaskStore(pool: pool).bugTrackSummary())
    }
}
