/// How a merge request ended, as Gitea's `MergePullRequest` API handler answers
/// (routers/api/v1/repo/pull.go).
enum GiteaMergeResult: Sendable, Equatable {
    case merged
    /// 405: Gitea will not merge it (already merged, failing required checks, work in
    /// progress, …) with its message.
    case notMergeable(String)
    /// 405 "Please try again later": Gitea has not finished checking the PR (its
    /// `ErrNotMergeableState`).
    case notReady
    /// 409 "head out of date": the head is no longer the `head_commit_id` sent.
    case staleHead
    /// 409 "merge push out of date": the base branch moved while Gitea merged; merging again
    /// may succeed.
    case baseMoved
    /// 409 with Gitea's conflict error (merge or rebase conflict, unrelated histories) or a
    /// push its hooks rejected: only a person can resolve it. Carries Gitea's message.
    case conflict(String)
    /// 404: the PR does not exist, or is closed (Gitea answers a merge of a closed PR with 404).
    case notFound
}
