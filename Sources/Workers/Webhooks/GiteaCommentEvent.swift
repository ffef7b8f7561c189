/// A Gitea `issue_comment` webhook (`X-Gitea-Event: issue_comment`): a comment created, edited or
/// deleted on an issue or, with `is_pull` (or an `issue.pull_request`), on a pull request.
public struct GiteaCommentEvent: Decodable, Sendable {
    public struct Issue: Decodable, Sendable {
        public let number: Int
        /// Present (an object) when the issue is a pull request.
        public let isPullRequest: Bool

        enum CodingKeys: String, CodingKey {
            case number
            case pullRequest = "pull_request"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            number = try container.decodeInteger(forKey: .number)
            isPullRequest = (try? container.decodeNil(forKey: .pullRequest)) == false
        }
    }

    public struct Comment: Decodable, Sendable {
        public let body: String
        public let user: GiteaUser?
    }

    public let action: String
    public let issue: Issue
    public let comment: Comment
    public let repository: GiteaRepository
    public let sender: GiteaUser?
    /// Gitea's own flag for a comment on a pull request.
    public let isPull: Bool?

    enum CodingKeys: String, CodingKey {
        case action, issue, comment, repository, sender
        case isPull = "is_pull"
    }

    // Written out so the fields are checked in this order: the first one missing is the one named.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        action = try container.decode(String.self, forKey: .action)
        issue = try container.decode(Issue.self, forKey: .issue)
        comment = try container.decode(Comment.self, forKey: .comment)
        repository = try container.decode(GiteaRepository.self, forKey: .repository)
        sender = container.lenient(GiteaUser.self, forKey: .sender)
        isPull = container.lenient(Bool.self, forKey: .isPull)
    }

    /// Whether the comment is on a pull request.
    public var onPullRequest: Bool { isPull ?? issue.isPullRequest }

    /// Who wrote it: the comment's user, else the sender.
    public var author: GiteaUser? { comment.user ?? sender }
}
