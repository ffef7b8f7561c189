/// A Plane `issue_comment` webhook: a comment written, edited or deleted, and who did it.
public struct PlaneCommentEvent: Decodable, Sendable {
    public let action: String
    public let comment: PlaneComment
    /// Who wrote it (`activity.actor`), when the payload says.
    public let actor: PlaneActor?

    /// The acting user's display name (`activity.actor.display_name`).
    public var actorName: String? { actor?.displayName }

    private enum CodingKeys: String, CodingKey {
        case action, data, activity
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
        actor = container.lenient(PlaneActivity.self, forKey: activity)?.actor
    }
}
