import Store

/// The Gitea calls the stage runner makes: a seam, so its merge and pull-request decisions can be
/// tested against an in-memory stand-in. ``GiteaClient`` is the real one (the REST API).
protocol GiteaAPI: Sendable {
    /// The open pull request from `head` into `base`, opened now if there is none.
    func openOrFindPullRequest(
        repo: String, head: String, base: String, title: String, body: String
    ) async throws -> (number: Int, headSHA: String)
    /// The pull request as Gitea shows it now; nil when Gitea does not know it.
    func pullRequest(repo: String, number: Int) async throws -> PullRequestSnapshot?
    /// A commit's combined CI state; nil when it has no statuses yet.
    func combinedStatus(repo: String, sha: String) async throws -> CIState?
    /// The contexts whose latest status on `sha` failed or errored (the combined-status API).
    func failedChecks(repo: String, sha: String) async throws -> [FailedCheck]
    /// Merges with a merge commit, only if the head is still `headSHA`.
    func merge(repo: String, number: Int, headSHA: String, message: String) async throws -> GiteaMergeResult
}
