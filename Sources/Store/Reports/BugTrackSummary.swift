/// Bug fast-track figures (the `/queue` `bug_fast_track` block).
public struct BugTrackSummary: Sendable, Equatable, Encodable {
    /// Bug-track tasks by status.
    public let byStatus: [String: Int]
    /// Bug-track tasks that passed analysis straight to development.
    public let architectureSkipped: Int
    /// Escalations to the full track.
    public let escalated: Int

    public init(byStatus: [String: Int], architectureSkipped: Int, escalated: Int) {
        self.byStatus = byStatus
        self.architectureSkipped = architectureSkipped
        self.escalated = escalated
    }

    enum CodingKeys: String, CodingKey {
        case byStatus = "tasks"
        case architectureSkipped, escalated
    }
}
