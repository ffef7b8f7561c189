import Foundation

/// A pull request as `GET …/pulls/{n}` shows it at the moment it was read.
struct PullRequestSnapshot: Sendable, Equatable {
    /// `open` or `closed`.
    var state: String
    var merged: Bool
    var mergeSHA: String?
    /// The head commit now; nil when Gitea did not say.
    var headSHA: String?
    /// When it last changed (pushes move it): orders reads against webhooks.
    var updatedAt: Date?
}
