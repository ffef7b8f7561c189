import Store

/// The `bug_fast_track` block: the bug label, bug-track tasks by status, how many skipped
/// architecture, and escalations to the full track.
public struct BugFastTrackBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let label: String
        public let summary: BugTrackSummary

        /// Creates the block's figures.
        public init(label: String, summary: BugTrackSummary) {
            self.label = label
            self.summary = summary
        }

        enum CodingKeys: String, CodingKey {
            case label, scope
        }

        /// The label and scope, then the summary's own keys beside them.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(label, forKey: .label)
            try container.encode(QueueReportScope.all, forKey: .scope)
            try summary.encode(to: encoder)
        }
    }

    public let key = "bug_fast_track"
    let label: String

    public init(label: String) {
        self.label = label
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(label: label, summary: try await TaskStore(pool: pool).bugTrackSummary())
    }
}
