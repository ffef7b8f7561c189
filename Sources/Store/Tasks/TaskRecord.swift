import Foundation

/// A task row.
public struct TaskRecord: Sendable {
    public let id: Int64
    public let workItem: String
    public let repo: String?
    public let title: String
    public let description: String
    public let labels: [String]
    public let state: TaskState
    /// The stage visit counter (see `StageVisit`).
    public let visit: Int
    public let prNumber: Int?
    public let headSHA: String?
    public let mergeSHA: String?
    /// Combined CI state of the PR head (`pending`, `success`, `failure`; nil before any status).
    public let headCIState: CIState?
    /// Combined CI state of the merge commit.
    public let mergeCIState: CIState?
    public let createdAt: Date
    public let updatedAt: Date

    static let columns = """
        id, work_item, repo, title, description, labels, stage, status, track, auto, visit, pr_number, head_sha, merge_sha, \
        head_ci_state, merge_ci_state, created_at, updated_at
        """

    init(row: Row) throws {
        id = try row.decode("id")
        workItem = try row.decode("work_item")
        repo = try row.decode("repo")
        title = try row.decode("title")
        description = try row.decode("description")
        labels = try row.decode("labels", as: PostgresTextArray.self).values
        state = TaskState(
            stage: try row.decode("stage"), status: try row.decode("status"), track: try row.decode("track"),
            auto: try row.decode("auto"))
        visit = try row.decode("visit")
        prNumber = try row.decode("pr_number")
        headSHA = try row.decode("head_sha")
        mergeSHA = try row.decode("merge_sha")
        headCIState = try row.decode("head_ci_state")
        mergeCIState = try row.decode("merge_ci_state")
        createdAt = try row.decode("created_at")
        updatedAt = try row.decode("updated_at")
    }
}

extension TaskRecord {
    /// The stage visit a job enqueued now would be about.
    public var currentVisit: StageVisit { StageVisit(stage: state.stage, visit: visit) }
}
