/// A Plane work item as its `issue` webhooks carry it.
///
/// `updated` payloads can be partial: every field but the identity is optional, and an absent
/// one keeps the value the task has. Fields the orchestrator only reads when present are read
/// leniently (see ``KeyedDecodingContainer/lenient(_:forKey:)``).
public struct PlaneIssue: Decodable, Sendable {
    public let id: String
    /// The number in `<PROJECT>-<sequence_id>`.
    public let sequenceID: Int
    /// The Plane project's id (not its identifier).
    public let project: String
    /// The title.
    public let name: String?
    /// Label names; `nil` when the payload has no label list (an empty list is no labels).
    public let labelNames: [String]?
    /// The workflow state's name.
    public let stateName: String?
    public let descriptionStripped: String?
    public let descriptionHTML: String?
    /// Plane's `updated_at`, as sent: it orders deliveries of one work item.
    public let updatedAt: String?

    enum CodingKeys: String, CodingKey {
        case id, project, name, labels, state
        case sequenceID = "sequence_id"
        case descriptionStripped = "description_stripped"
        case descriptionHTML = "description_html"
        case updatedAt = "updated_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        sequenceID = try container.decodeInteger(forKey: .sequenceID)
        project = try container.decode(String.self, forKey: .project)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        labelNames = container.lenient([PlaneReference].self, forKey: .labels)?.compactMap(\.name)
        stateName = container.lenient(PlaneReference.self, forKey: .state)?.name
        descriptionStripped = container.lenient(String.self, forKey: .descriptionStripped)
        descriptionHTML = container.lenient(String.self, forKey: .descriptionHTML)
        updatedAt = container.lenient(String.self, forKey: .updatedAt)
    }
}
