/// A Gitea pull-request review webhook: `X-Gitea-Event` `pull_request_approved`,
/// `pull_request_rejected` (changes requested) or `pull_request_comment` (a review comment). The
/// body is Gitea's `PullRequestPayload` with a `review` (`type`, `content`) and the `sender`.
public struct GiteaReviewEvent: Decodable, Sendable {
    /// What the review says.
    public enum Verdict: String, Sendable {
        case approved = "pull_request_approved"
        case changesRequested = "pull_request_rejected"
        case comment = "pull_request_comment"
    }

    public struct Review: Decodable, Sendable {
        /// Gitea's review type, e.g. `pull_request_review_rejected`.
        public let type: String?
        /// The review's text.
        public let content: String
    }

    /// Set from the `X-Gitea-Event` header, which the body does not repeat.
    public internal(set) var verdict: Verdict = .comment
    public let number: Int
    public let review: Review
    public let repository: GiteaRepository
    public let sender: GiteaUser?

    enum CodingKeys: String, CodingKey {
        case number, review, repository, sender
    }

    // Written out so the fields are checked in this order: the first one missing is the one named.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        number = try container.decodeInteger(forKey: .number)
        review = try container.decode(Review.self, forKey: .review)
        repository = try container.decode(GiteaRepository.self, forKey: .repository)
        sender = container.lenient(GiteaUser.self, forKey: .sender)
    }
}
