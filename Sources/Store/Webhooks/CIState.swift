/// A commit status state as Gitea reports it, and the combined state of a commit's statuses
/// (`combined_ci_state`, which only ever yields `pending`, `success` or `failure`).
public enum CIState: String, Sendable, Codable, PostgresTextEnum {
    case pending, success, failure, error, warning

    /// Whether the state is a red result: the combination treats `error` like `failure`.
    public var isFailure: Bool { self == .failure || self == .error }
}
