/// `notify.telegram`: one task event sent to the Telegram chat. It waits in a queue of its own so
/// only replicas with Telegram settings claim it.
public enum TelegramNotificationJob: JobContract {
    public typealias Payload = TelegramJobPayload<TaskEventNotification>

    public static let kind = "notify.telegram"
    public static let queue = "notify.telegram"
    public static let maxAttempts = 10

    public static func dedupeKey(for payload: Payload) -> String? {
        guard case .content(let event) = payload else { return Payload.remainderKey(payload) }
        return "telegram:\(event.event_id)"
    }
}
