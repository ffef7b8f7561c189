import Store

/// The `stop` block: the STOP label, and what cancelling has done (cancelled tasks and stage
/// jobs, merges a cancel waits for, the latest 10 cancellations).
public struct StopBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let label: String
        public let summary: StopSummary

        /// Creates the block's figures.
        public init(label: String, summary: StopSummary) {
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

    public let key = "stop"
    let label: String

    public init(label: String) {
        self.label = label
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(label: label, summary: try await TaskStore(pool: pool).stopSummary(recent: 10))
    }
}
