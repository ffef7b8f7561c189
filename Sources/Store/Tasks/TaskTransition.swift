/// Which run of a stage an outcome is about: a `run_stage` job carries the visit it was enqueued
/// for, so a late outcome of an earlier visit (a stale replica, a rescued job) can never move the
/// task on from a later one.
public struct StageVisit: Sendable, Hashable, CustomStringConvertible {
    public var stage: TaskStage
    public var visit: Int

    public init(stage: TaskStage, visit: Int) {
        self.stage = stage
        self.visit = visit
    }

    public var description: String { "\(stage.rawValue) visit \(visit)" }
}

/// What the I/O layer carries out, in the transition's own transaction.
public enum TaskAction: Sendable, Equatable {
    /// Enqueue the `run_stage` job for a stage visit, try `attempt`, with the gate's feedback on a retry.
    case enqueueStage(StageVisit, attempt: Int, feedback: String?)
    /// Cancel the task's stage jobs: queued ones at once, running ones signalled — except a
    /// running merge, which finishes (half a merge is worse than a finished one).
    case cancelStageJobs
    /// Record an automatic lesson about the task; without a root cause, the transition's reason is it.
    case recordLesson(type: String, rootCause: String?)
    /// The task gave up a slot of its repository's serial gate: open it for the longest-waiting task.
    case openSerialGate
    /// The task is done: start the blocked tasks that waited only for it.
    case releaseDependents
}

/// The limits the stage policy applies.
public struct StagePolicy: Sendable, Equatable {
    /// Gate failures of one stage visit before the task fails.
    public var maxGateFailures: Int
    /// Review rounds (changes requested) before the task fails.
    public var maxReviewRounds: Int

    public init(maxGateFailures: Int = 3, maxReviewRounds: Int = 3) {
        self.maxGateFailures = maxGateFailures
        self.maxReviewRounds = maxReviewRounds
    }
}

/// A decided transition: the event's name for `task_events`, the new state and visit, and what to do.
public struct TaskTransition: Sendable, Equatable {
    public var eventName: String
    public var state: TaskState
    /// The task's visit counter after the transition (grows when a stage starts afresh).
    public var visit: Int
    public var actions: [TaskAction]
}
