/// `post_deploy_watch`: watches `health_url` after a deploy (one job per deploy stage visit).
/// The job carries no watch state: that lives in `deploy_watches`, so whichever replica runs the
/// job next — after a postponement between probes, or a rescue — continues the same watch.
public enum PostDeployWatchJob: JobContract {
    /// The deploy stage visit being watched and the commit it shipped.
    public struct Payload: Codable, Sendable, Equatable {
        public var work_item: String
        public var visit: Int
        public var merge_sha: String

        /// Creates a payload.
        public init(work_item: String, visit: Int, merge_sha: String) {
            self.work_item = work_item
            self.visit = visit
            self.merge_sha = merge_sha
        }
    }

    public static let kind = "post_deploy_watch"
    public static let maxAttempts = 5

    public static func dedupeKey(for payload: Payload) -> String? {
        "deploy_watch:\(payload.work_item):v\(payload.visit)"
    }
}
