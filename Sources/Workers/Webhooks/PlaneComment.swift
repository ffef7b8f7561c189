/// A comment on a Plane work item as its `issue_comment` webhooks carry it.
public struct PlaneComment: Decodable, Sendable {
    public let id: String
    /// The work item's id.
    public let issue: String
    public let project: String
    public let html: String?
    public let stripped: String?
    /// When it was written, as sent: an approval answers the wait open at that moment.
    public let createdAt: String?

    enum CodingKeys: String, CodingKey {
        case id, issue, project
        case html = "comment_html"
        case stripped = "comment_stripped"
        case createdAt = "created_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        issue = try container.decode(String.self, forKey: .issue)
        project = try container.decode(String.self, forKey: .project)
        html = container.lenient(String.self, forKey: .html)
        stripped = container.lenient(String.self, forKey: .stripped)
        createdAt = container.lenient(String.self, forKey: .createdAt)
    }
}
