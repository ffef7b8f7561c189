/// `process_webhook`: applies one stored delivery. Enqueued by the inbox statement itself, in the
/// same round trip that stores the delivery (its id is drawn there), so that statement builds the
/// payload from ``deliveryIDField`` and the key from ``dedupePrefix``.
public enum ProcessWebhookJob: JobContract {
    /// The stored delivery to process.
    public struct Payload: Codable, Sendable, Equatable {
        public var deliveryID: Int64

        /// Creates a payload.
        public init(deliveryID: Int64) { self.deliveryID = deliveryID }

        enum CodingKeys: String, CodingKey {
            case deliveryID = "delivery_id"
        }
    }

    public static let kind = "process_webhook"
    public static let maxAttempts = 10

    /// The payload's one field, for the SQL that builds it next to the inserted delivery row.
    public static let deliveryIDField = Payload.CodingKeys.deliveryID.stringValue
    /// The dedupe key is this prefix and the delivery id.
    public static let dedupePrefix = "webhook:"

    public static func dedupeKey(for payload: Payload) -> String? { dedupePrefix + String(payload.deliveryID) }
}
