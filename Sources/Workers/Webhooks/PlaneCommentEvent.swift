/// A Plane `issue_comment` webhook: a comment written, edited or deleted, and who did it.
public struct PlaneCommentEvent: Decodable, Sendable {
    public let action: String
    public let comment: PlaneComment
    /// The acting user's display name (`activity.actor.display_name`).
    public let actorName: String?

    private enum CodingKeys: String, CodingKey {
        case action, data, activity
    }

    private struct Activity: Decodable {
        struct Actor: Decodable {
            let display_name: String?
        }

        let actor: Actor?
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            action: try container.decode(String.self, forKey: .action), data: .data, activity: .activity,
            in: container)
    }

    /// Reads the event from the body's container, already open and its `action` read, so the body
    /// (``PlaneWebhookBody``) is not opened and read a second time for every delivery.
    init<Key: CodingKey>(
        action: String, data: Key, activity: Key, in container: KeyedDecodingContainer<Key>
    ) throws {
        self.action = action
        comment = try container.decode(PlaneComment.self, forKey: data)
        actorName = container.lenient(Activity.self, forKey: activity)?.actor?.display_name
    }
}
