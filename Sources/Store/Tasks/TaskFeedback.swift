import Foundation

/// A review or comment on a task's pull request (`task_feedback`).
public struct TaskFeedback: Sendable, Equatable {
    /// What it says.
    public enum Kind: String, Sendable, PostgresTextEnum {
        case changesRequested = "changes_requested"
        case comment
        case approved
    }

    public let id: Int64
    public let kind: Kind
    public let author: String?
    public let body: String
    public let prNumber: Int?

    static let columns = "id, kind, author, body, pr_number"

    init(row: Row) throws {
        id = try row.decode("id")
        kind = try row.decode("kind")
        author = try row.decode("author")
        body = try row.decode("body")
        prNumber = try row.decode("pr_number")
    }

    /// The feedback a development stage gets for pending reviews and comments: each with who
    /// wrote it, oldest first.
    public static func feedback(_ items: [TaskFeedback], round: Int, of rounds: Int) -> String {
        var lines = [
            "Review feedback on the pull request (review round \(round) of \(rounds)). Address each point:"
        ]
        for item in items {
            let what = item.kind == .changesRequested ? "requested changes" : "commented"
            lines.append("- \(item.author ?? "a reviewer") \(what): \(item.body)")
        }
        return lines.joined(separator: "\n")
    }
}
