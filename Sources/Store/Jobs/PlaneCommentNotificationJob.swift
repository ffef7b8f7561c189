/// `notify.plane_comment`: one task event posted as a comment on its Plane work item. It waits in
/// a queue of its own so only replicas with Plane API settings claim it.
public enum PlaneCommentNotificationJob: JobContract {
    public typealias Payload = TaskEventNotification

    public static let kind = "notify.plane_comment"
    public static let queue = "notify.plane_comment"
    public static let maxAttempts = 10

    public static func dedupeKey(for payload: Payload) -> String? { "plane_comment:\(payload.event_id)" }
}
