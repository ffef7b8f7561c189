/// One task event as a notification job carries it: what changed, on which task, and where the
/// task lives in Plane (absent for tasks that did not come from Plane).
public struct TaskEventNotification: Codable, Sendable, Equatable {
    public let event_id: Int64
    public let event: String
    public let work_item: String
    public let title: String
    /// The task's repository; absent in jobs queued before it was carried.
    public let repo: String?
    public let from_stage: String
    public let to_stage: String
    public let from_status: String
    public let to_status: String
    public let reason: String?
    public let actor: String
    public let plane_issue_id: String?
    public let plane_project_id: String?

    /// Creates a notification.
    public init(
        event_id: Int64, event: String, work_item: String, title: String, repo: String?, from_stage: String,
        to_stage: String,
        from_status: String, to_status: String, reason: String?, actor: String, plane_issue_id: String?,
        plane_project_id: String?
    ) {
        self.event_id = event_id
        self.event = event
        self.work_item = work_item
        self.title = title
        self.repo = repo
        self.from_stage = from_stage
        self.to_stage = to_stage
        self.from_status = from_status
        self.to_status = to_status
        self.reason = reason
        self.actor = actor
        self.plane_issue_id = plane_issue_id
        self.plane_project_id = plane_project_id
    }
}
