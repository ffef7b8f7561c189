/// A Gitea `push` webhook: a ref moved from `before` to `after`.
public struct GiteaPushEvent: Decodable, Sendable {
    public let ref: String
    /// All zeros when the branch was deleted.
    public let after: String
    /// All zeros when the branch was created.
    public let before: String?
    public let repository: GiteaRepository

    enum CodingKeys: String, CodingKey {
        case ref, after, before, repository
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ref = try container.decode(String.self, forKey: .ref)
        after = try container.decode(String.self, forKey: .after)
        before = container.lenient(String.self, forKey: .before)
        repository = try container.decode(GiteaRepository.self, forKey: .repository)
    }
}
