/// A task's stage in the pipeline.
public enum TaskStage: String, Sendable, CaseIterable, PostgresDecodable {
    case analysis, architecture, development, review, merge, deploy, done

    /// Stages done by an agent; without `auto` the task stops for approval after each.
    public var isAgentStage: Bool {
        switch self {
        case .analysis, .architecture, .development, .review: return true
        case .merge, .deploy, .done: return false
        }
    }

    public init(postgresText: String) throws {
        guard let value = TaskStage(rawValue: postgresText) else {
            throw PostgresError(kind: .decoding, message: "unknown task stage '\(postgresText)'")
        }
        self = value
    }
}

/// Which stages a task goes through.
public enum TaskTrack: String, Sendable, CaseIterable, PostgresDecodable {
    /// Every stage.
    case full
    /// Bug fast-track: skips architecture.
    case bug

    /// The stages of this track, in order.
    public var stages: [TaskStage] {
        switch self {
        case .full: return TaskStage.allCases
        case .bug: return TaskStage.allCases.filter { $0 != .architecture }
        }
    }

    public init(postgresText: String) throws {
        guard let value = TaskTrack(rawValue: postgresText) else {
            throw PostgresError(kind: .decoding, message: "unknown task track '\(postgresText)'")
        }
        self = value
    }
}

/// Where a task is besides its stage.
public enum TaskStatus: String, Sendable, CaseIterable, PostgresDecodable {
    case active
    case awaitingApproval = "awaiting_approval"
    /// Waiting for dependencies.
    case blocked
    /// Waiting for the serial gate or a repository freeze.
    case waiting
    /// Merge verification failed.
    case held
    case cancelled, failed, done

    /// No further transition except `retry` (from `failed`).
    public var isTerminal: Bool { self == .cancelled || self == .failed || self == .done }

    public init(postgresText: String) throws {
        guard let value = TaskStatus(rawValue: postgresText) else {
            throw PostgresError(kind: .decoding, message: "unknown task status '\(postgresText)'")
        }
        self = value
    }
}

/// The part of a task the state machine decides.
public struct TaskState: Sendable, Equatable {
    public var stage: TaskStage
    public var status: TaskStatus
    public var track: TaskTrack
    /// The `auto` label: advance without human approval.
    public var auto: Bool

    public init(stage: TaskStage, status: TaskStatus, track: TaskTrack, auto: Bool) {
        self.stage = stage
        self.status = status
        self.track = track
        self.auto = auto
    }

    /// A new task: first stage, active (in visit 1).
    public static func initial(track: TaskTrack, auto: Bool) -> TaskState {
        TaskState(stage: .analysis, status: .active, track: track, auto: auto)
    }
}
