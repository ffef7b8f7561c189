/// A Gitea `pull_request` webhook: opened, synchronized, closed (with `merged`), and so on.
public struct GiteaPullRequestEvent: Decodable, Sendable {
    public let action: String
    public let number: Int
    public let pullRequest: GiteaPullRequest
    public let repository: GiteaRepository

    enum CodingKeys: String, CodingKey {
        case action, number, repository
        case pullRequest = "pull_request"
    }

    // Written out so the fields are checked in this order: the first one missing is the one named.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        action = try container.decode(String.self, forKey: .action)
        number = try container.decodeInteger(forKey: .number)
        pullRequest = try container.decode(GiteaPullRequest.self, forKey: .pullRequest)
        repository = try container.decode(GiteaRepository.self, forKey: .repository)
    }
}
