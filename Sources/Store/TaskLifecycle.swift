/// A task's stage in the pipeline (DESIGN §7).
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

    /// Creates a state.
    public init(stage: TaskStage, status: TaskStatus, track: TaskTrack, auto: Bool) {
        self.stage = stage
        self.status = status
        self.track = track
        self.auto = auto
    }

    /// A new task: first stage, active.
    public static func initial(track: TaskTrack, auto: Bool) -> TaskState {
        TaskState(stage: .analysis, status: .active, track: track, auto: auto)
    }
}

/// Something that happens to a task.
public enum TaskEvent: Sendable, Equatable {
    /// The current stage's gate passed.
    case stagePassed
    /// A human approved (`/approve`, or the admin API).
    case approved
    /// The current stage's gate failed; `final` when its retries are used up.
    case stageFailed(final: Bool)
    /// Review answered `REQUEST_CHANGES`: back to development.
    case changesRequested
    /// Dependencies are not done.
    case blocked
    /// Dependencies are done.
    case unblocked
    /// The serial gate or a freeze holds the task back.
    case waitForGate
    /// The gate opened.
    case gateOpened
    /// Merge verification failed.
    case held
    /// An operator retries (`/retry`): a failed or held task becomes active in its stage.
    case retry
    /// `STOP` label, `/stop`, or the admin API.
    case cancel
    /// Bug fast-track escalated to the full track (only while in analysis).
    case escalate

    /// A short name for logs and `task_events`.
    public var name: String {
        switch self {
        case .stagePassed: return "stage_passed"
        case .approved: return "approved"
        case .stageFailed(let final): return final ? "stage_failed_final" : "stage_failed"
        case .changesRequested: return "changes_requested"
        case .blocked: return "blocked"
        case .unblocked: return "unblocked"
        case .waitForGate: return "wait_for_gate"
        case .gateOpened: return "gate_opened"
        case .held: return "held"
        case .retry: return "retry"
        case .cancel: return "cancel"
        case .escalate: return "escalate"
        }
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

/// The task state machine (DESIGN §7): every allowed transition, in one place, with no I/O.
public enum TaskLifecycle {
    /// The state after `event`, or `IllegalTransition`.
    public static func apply(_ event: TaskEvent, to state: TaskState) throws -> TaskState {
        func refuse(_ reason: String) -> IllegalTransition {
            IllegalTransition(event: event.name, state: state, reason: reason)
        }
        func require(_ statuses: TaskStatus...) throws {
            guard statuses.contains(state.status) else {
                throw refuse("needs status \(statuses.map(\.rawValue).joined(separator: " or "))")
            }
        }
        var next = state
        switch event {
        case .stagePassed:
            try require(.active)
            guard let following = nextStage(after: state.stage, track: state.track) else { throw refuse("the task is already done") }
            next.stage = following
            if following == .done {
                next.status = .done
            } else {
                next.status = (!state.auto && state.stage.isAgentStage) ? .awaitingApproval : .active
            }
        case .approved:
            try require(.awaitingApproval)
            next.status = .active
        case .stageFailed(let final):
            try require(.active)
            if final { next.status = .failed }
        case .changesRequested:
            try require(.active)
            guard state.stage == .review else { throw refuse("only a review can request changes") }
            next.stage = .development
        case .blocked:
            try require(.active, .awaitingApproval)
            next.status = .blocked
        case .unblocked:
            try require(.blocked)
            next.status = .active
        case .waitForGate:
            try require(.active)
            next.status = .waiting
        case .gateOpened:
            try require(.waiting)
            next.status = .active
        case .held:
            try require(.active)
            guard state.stage == .merge else { throw refuse("only a merge can be held") }
            next.status = .held
        case .retry:
            try require(.failed, .held)
            next.status = .active
        case .cancel:
            guard !state.status.isTerminal else { throw refuse("the task is already \(state.status.rawValue)") }
            next.status = .cancelled
        case .escalate:
            guard state.track == .bug else { throw refuse("only a bug-track task can be escalated") }
            guard state.stage == .analysis, !state.status.isTerminal else { throw refuse("escalation is only possible during analysis") }
            next.track = .full
        }
        return next
    }

    /// The stage after `stage` on `track` (`nil` after done).
    public static func nextStage(after stage: TaskStage, track: TaskTrack) -> TaskStage? {
        let stages = track.stages
        guard let index = stages.firstIndex(of: stage), index + 1 < stages.count else { return nil }
        return stages[index + 1]
    }
}
