import Foundation

/// Lesson counts (the `/queue` `lessons` block).
public struct LessonSummary: Sendable, Equatable, Encodable {
    public let byStatus: [String: Int]
    public let byType: [String: Int]
    /// When the latest lesson was recorded; nil when there is none.
    public let lastAt: Date?

    public init(byStatus: [String: Int], byType: [String: Int], lastAt: Date?) {
        self.byStatus = byStatus
        self.byType = byType
        self.lastAt = lastAt
    }
}
