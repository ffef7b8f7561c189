import Foundation

/// What a detector found, before it becomes a `lessons` row: the work item, repository and stage
/// come from the task the lesson is about (``LessonStore/recordAuto(_:task:on:)``).
///
/// `rootCause` must not carry what differs between two occurrences of one problem (a run id, a
/// log path, a time): the deduplication window compares it, so those belong in the evidence.
public struct AutoLesson: Sendable, Equatable {
    /// The lesson type (free text; the detectors' types are listed in docs/lessons.md).
    public var type: String
    public var rootCause: String
    /// The agent role (`default`, `reviewer`, …), when an agent run is involved.
    public var agent: String?
    /// The agent run, when one is involved; its log path is looked up for `detail`.
    public var runID: Int64?
    /// Further machine-readable context, merged into `detail` (string values only).
    public var evidence: [String: String]

    public init(
        type: String, rootCause: String, agent: String? = nil, runID: Int64? = nil, evidence: [String: String] = [:]
    ) {
        self.type = type
        self.rootCause = rootCause
        self.agent = agent
        self.runID = runID
        self.evidence = evidence
    }
}
