import Store

/// The `lessons` block: the journal's kill switch and dedup window, lessons by status and type,
/// and the last one's time.
public struct LessonsBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let settings: LessonJournal.Settings
        public let summary: LessonSummary

        /// Creates the block's figures.
        public init(settings: LessonJournal.Settings = .init(), summary: LessonSummary) {
            self.settings = settings
            self.summary = summary
        }

        enum CodingKeys: String, CodingKey {
            case enabled, scope
            case dedupWindowSeconds = "dedup_window_seconds"
        }

        /// The switch, the window and the scope, then the summary's own keys beside them.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(settings.enabled, forKey: .enabled)
            try container.encode(QueueReportScope.all, forKey: .scope)
            try container.encode(settings.dedupWindow.seconds, forKey: .dedupWindowSeconds)
            try summary.encode(to: encoder)
        }
    }

    public let key = "lessons"
    let settings: LessonJournal.Settings

    /// The block for the journal as configured (`ORCH_LESSONS_ENABLED`, `ORCH_LESSONS_DEDUP_WINDOW`).
    public init(settings: LessonJournal.Settings = .init()) {
        self.settings = settings
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(settings: settings, summary: try await LessonStore(pool: pool).summary())
    }
}
