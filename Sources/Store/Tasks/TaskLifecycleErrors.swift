/// An outcome about a stage visit the task is no longer in; nothing is changed.
public struct StaleOutcome: Error, CustomStringConvertible, Equatable {
    public let about: StageVisit
    public let state: TaskState
    public let visit: Int

    public var description: String {
        "outcome about \(about) is stale: the task is in \(state.stage.rawValue)/\(state.status.rawValue) visit \(visit)"
    }
}

/// An event that is not allowed in the task's current state; nothing is changed.
public struct IllegalTransition: Error, CustomStringConvertible, Equatable {
    public let event: String
    public let state: TaskState
    public let reason: String

    public var description: String {
        "cannot apply '\(event)' to a task in \(state.stage.rawValue)/\(state.status.rawValue) (\(state.track.rawValue) track): \(reason)"
    }
}
