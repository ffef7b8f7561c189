/// A pull request as Gitea's `pull_request` webhooks carry it.
public struct GiteaPullRequest: Decodable, Sendable {
    /// The branch the pull request merges from.
    public struct Head: Decodable, Sendable {
        public let sha: String
        /// The branch name: a task's is `orch/<WORK-ITEM>`.
        public let ref: String?
        /// The head's repository in full; some Gitea versions send only ``repoID``.
        public let repo: GiteaRepository?
        public let repoID: Int64?

        enum CodingKeys: String, CodingKey {
            case sha, ref, repo
            case repoID = "repo_id"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            sha = try container.decode(String.self, forKey: .sha)
            ref = container.lenient(String.self, forKey: .ref)
            repo = container.lenient(GiteaRepository.self, forKey: .repo)
            repoID = container.lenient(Int64.self, forKey: .repoID)
        }
    }

    public let head: Head
    public let merged: Bool
    public let mergeCommitSHA: String?
    public let updatedAt: String?
    public let closedAt: String?
    public let mergedAt: String?

    enum CodingKeys: String, CodingKey {
        case head, merged
        case mergeCommitSHA = "merge_commit_sha"
        case updatedAt = "updated_at"
        case closedAt = "closed_at"
        case mergedAt = "merged_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        head = try container.decode(Head.self, forKey: .head)
        merged = container.lenient(Bool.self, forKey: .merged) ?? false
        mergeCommitSHA = container.lenient(String.self, forKey: .mergeCommitSHA)
        updatedAt = container.lenient(String.self, forKey: .updatedAt)
        closedAt = container.lenient(String.self, forKey: .closedAt)
        mergedAt = container.lenient(String.self, forKey: .mergedAt)
    }
}
