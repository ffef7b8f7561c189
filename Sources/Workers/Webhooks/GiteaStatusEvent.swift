/// A Gitea `status` webhook: one CI context's state on one commit.
public struct GiteaStatusEvent: Decodable, Sendable {
    public let sha: String
    /// As sent; a state outside ``CIState`` is stored and ignored, not refused.
    public let state: String
    public let context: String
    public let id: Int64?
    public let targetURL: String?
    public let description: String?
    public let repository: GiteaRepository

    enum CodingKeys: String, CodingKey {
        case sha, state, context, id, description, repository
        case targetURL = "target_url"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        sha = try container.decode(String.self, forKey: .sha)
        state = try container.decode(String.self, forKey: .state)
        context = try container.decode(String.self, forKey: .context)
        id = container.lenient(Int64.self, forKey: .id)
        targetURL = container.lenient(String.self, forKey: .targetURL)
        description = container.lenient(String.self, forKey: .description)
        repository = try container.decode(GiteaRepository.self, forKey: .repository)
    }
}
