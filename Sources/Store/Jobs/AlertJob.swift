/// `notify.alert`: an operator alert (orphaned agent, gone replica, open breaker) sent to
/// Telegram, so it waits in Telegram's queue. A repeated alert about the same thing is a no-op
/// while the first is queued.
public enum AlertJob: JobContract {
    /// The alert's text, and what it is about (the dedupe key; absent in alerts queued before
    /// the payload carried it).
    public struct Alert: Codable, Sendable, Equatable {
        public var text: String
        public var key: String?

        /// Creates an alert.
        public init(text: String, key: String?) {
            self.text = text
            self.key = key
        }
    }

    public typealias Payload = TelegramJobPayload<Alert>

    public static let kind = "notify.alert"
    public static let queue = TelegramNotificationJob.queue
    public static let maxAttempts = 10

    public static func dedupeKey(for payload: Payload) -> String? {
        guard case .content(let alert) = payload else { return Payload.remainderKey(payload) }
        return alert.key.map { "alert:\($0)" }
    }
}
