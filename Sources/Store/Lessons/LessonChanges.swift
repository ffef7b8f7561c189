/// What `POST /lessons/{id}` may change on a lesson: each non-nil field replaces the stored one
/// (`detail`, a JSON object, is merged into the stored one so a note never erases a detector's
/// evidence).
public struct LessonChanges: Sendable, Equatable {
    public var status: String?
    public var type: String?
    public var rootCause: String?
    public var suggestion: String?
    public var attribution: String?
    public var targetRepo: String?
    public var targetDomain: String?
    public var relatedTask: String?
    public var stage: String?
    public var agent: String?
    public var repo: String?
    public var workItem: String?
    public var taskID: Int64?
    public var detail: JSONB?

    public init() {}
}
