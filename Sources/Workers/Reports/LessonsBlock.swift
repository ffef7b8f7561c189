import Store

/// The `lessons` block: lessons by status and type, and the last one's time.
public struct LessonsBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let summary: LessonSummary

        /// Creates the block's figures.
        public init(summary: LessonSummary) {
            self.summary = summary
        }

        enum CodingKeys: String, CodingKey {
            case scope
        }

        /// The scope, then the summary's own keys beside it.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(QueueReportScope.all, forKey: .scope)
            try summary.encode(to: encoder)
        }
    }

    public let key = "lessons"

    public init() {}

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(summary: try await LessonStore(pool: pool).summary())
    }
}
