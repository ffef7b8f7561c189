/// A Plane `issue` webhook: a work item written (`created`, `updated`) or deleted.
public enum PlaneIssueEvent: Decodable, Sendable {
    /// Created or updated (or another action Plane adds): the work item as sent, and who wrote it.
    case written(action: String, PlaneIssue, actor: PlaneActor? = nil)
    /// Deleted: Plane sends little more than the id.
    case deleted(issueID: String)

    /// Plane's action name.
    public var action: String {
        switch self {
        case .written(let action, _, _): action
        case .deleted: "deleted"
        }
    }

    private enum CodingKeys: String, CodingKey {
        case action, data, activity
    }

    private enum DeletedKeys: String, CodingKey {
        case id
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
        action: String, data key: Key, activity: Key, in container: KeyedDecodingContainer<Key>
    ) throws {
        if action == "deleted" {
            let data = try container.nestedContainer(keyedBy: DeletedKeys.self, forKey: key)
            self = .deleted(issueID: try data.decode(String.self, forKey: .id))
        } else {
            self = .written(
                action: action, try container.decode(PlaneIssue.self, forKey: key),
                actor: container.lenient(PlaneActivity.self, forKey: activity)?.actor)
        }
    }
}
