/// The repository a Gitea event is about (`repository`), or a pull request head's (`head.repo`).
public struct GiteaRepository: Decodable, Sendable {
    /// `owner/name`, as configured in `repos[].repo`.
    public let fullName: String
    public let id: Int64?

    enum CodingKeys: String, CodingKey {
        case id
        case fullName = "full_name"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        fullName = try container.decode(String.self, forKey: .fullName)
        id = container.lenient(Int64.self, forKey: .id)
    }
}
