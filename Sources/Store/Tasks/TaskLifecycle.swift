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

/// An outcome about a stage visit the task is no longer in; nothing is changed.
public struct StaleOutcome: Error, CustomStringConvertible, Equatable {
    public let about: StageVisit
    public let state: TaskState
    public let visit: Int

    public var description: String {
        "outcome about \(about) is stale: the task is in \(state.stage.rawValue)/\(state.status.rawValue) visit \(visit)"
    }
}

/// Something that happens to a task.
public enum TaskEvent: Sendable, Equatable {
    /// The current stage's gate passed.
    case stagePassed
    /// A human approved whatever stage awaits approval (the admin API without `?stage=`).
    case approved
    /// A human approved starting `stage` — for a comment, during the wait of `visit` it was written
    /// in: refused unless the task awaits approval of exactly that stage (and visit), so a late or
    /// replayed approval never starts a later stage.
    case approvedStage(TaskStage, visit: Int?)
    /// The current stage's gate failed; `final` when its retries are used up.
    case stageFailed(final: Bool)
    /// The gate of try `attempt` failed with `reason`: the policy retries the stage with the
    /// reason as feedback, or fails the task (and records a lesson) when the tries are used up.
    case gateFailed(reason: String, attempt: Int)
    /// Review answered `REQUEST_CHANGES`: back to development.
    case changesRequested
    /// Review answered `REQUEST_CHANGES` for the `round`-th time (1-based): back to development,
    /// or the task fails when the policy's rounds are used up.
    case reviewRequestedChanges(round: Int)
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
    /// The stage's job failed for good (its retries used up, or an error retrying cannot fix): the
    /// task is `held` for an operator when `canRetry` (Gitea down, a rejected push, a merge
    /// conflict to resolve), else `failed`; either way `/retry` starts the stage again.
    case stageErrored(reason: String, canRetry: Bool)
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
        case .approved, .approvedStage: return "approved"
        case .stageFailed(let final): return final ? "stage_failed_final" : "stage_failed"
        case .gateFailed: return "stage_failed"
        case .changesRequested, .reviewRequestedChanges: return "changes_requested"
        case .blocked: return "blocked"
        case .unblocked: return "unblocked"
        case .waitForGate: return "wait_for_gate"
        case .gateOpened: return "gate_opened"
        case .held: return "held"
        case .stageErrored: return "stage_error"
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

/// The task state machine: every allowed transition, and what each one must do, in one place with
/// no I/O. `TaskStore` carries the actions out in the transition's transaction.
public enum TaskLifecycle {
    /// The state after `event`, or `IllegalTransition`.
    public static func apply(_ event: TaskEvent, to state: TaskState) throws -> TaskState {
        try decide(event, from: state, visit: 0).state
    }

    /// Decides `event` for a task in `state` and `visit`: the new state and visit, and the
    /// actions to carry out. `about` names the stage visit an outcome is for; an outcome for any
    /// other visit, or for a task no longer active, is refused with `StaleOutcome`.
    public static func decide(
        _ event: TaskEvent, from state: TaskState, visit: Int, about: StageVisit? = nil, policy: StagePolicy = .init()
    ) throws -> TaskTransition {
        let current = StageVisit(stage: state.stage, visit: visit)
        if let about, about != current || state.status != .active {
            throw StaleOutcome(about: about, state: state, visit: visit)
        }
        var next = try transition(event, from: state)
        try checkApprovedStage(event, state: state, visit: visit)
        var name = event.name
        var actions: [TaskAction] = []
        switch event {
        case .gateFailed(let reason, let attempt):
            if attempt + 1 < policy.maxGateFailures {
                actions.append(.enqueueStage(current, attempt: attempt + 1, feedback: reason))
            } else {
                next.status = .failed
                name = TaskEvent.stageFailed(final: true).name
                actions.append(.recordLesson(type: "gate_failure", rootCause: reason))
            }
        case .reviewRequestedChanges(let round) where round > policy.maxReviewRounds:
            next = state
            next.status = .failed
            name = TaskEvent.stageFailed(final: true).name
            let reason = "review requested changes \(round) times (limit \(policy.maxReviewRounds))"
            actions.append(.recordLesson(type: "gate_failure", rootCause: reason))
        case .cancel:
            actions.append(.cancelStageJobs)
        case .stageErrored(let reason, let canRetry):
            // The journal's types (docs/architecture.md, Lessons): a merge that cannot go on is a merge hold; a job
            // that ran out of retries is transient-retry exhaustion.
            let type = state.stage == .merge ? "merge_hold" : canRetry ? "transient_exhaustion" : "other"
            actions.append(.recordLesson(type: type, rootCause: reason))
        case .held:
            actions.append(.recordLesson(type: "merge_hold", rootCause: nil))
        default:
            break
        }
        // A task that becomes active in a stage (a new stage, an approval, a retry, a gate
        // opened) starts a new visit with that stage's first job, exactly once.
        var nextVisit = visit
        if startsVisit(from: (state.stage, state.status), to: (next.stage, next.status)) {
            nextVisit = visit + 1
            actions.append(.enqueueStage(StageVisit(stage: next.stage, visit: nextVisit), attempt: 0, feedback: nil))
        }
        return TaskTransition(eventName: name, state: next, visit: nextVisit, actions: actions)
    }

    /// The bare state change of `event` (no policy), or `IllegalTransition`.
    static func transition(_ event: TaskEvent, from state: TaskState) throws -> TaskState {
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
            guard let following = nextStage(after: state.stage, track: state.track) else {
                throw refuse("the task is already done")
            }
            next.stage = following
            if following == .done {
                next.status = .done
            } else {
                next.status = (!state.auto && state.stage.isAgentStage) ? .awaitingApproval : .active
            }
        case .approved, .approvedStage:
            try require(.awaitingApproval)
            next.status = .active
        case .stageFailed(let final):
            try require(.active)
            if final { next.status = .failed }
        case .gateFailed:
            try require(.active)
        case .changesRequested, .reviewRequestedChanges:
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
        case .stageErrored(_, let canRetry):
            try require(.active)
            next.status = canRetry ? .held : .failed
        case .retry:
            try require(.failed, .held)
            next.status = .active
        case .cancel:
            guard !state.status.isTerminal else { throw refuse("the task is already \(state.status.rawValue)") }
            next.status = .cancelled
        case .escalate:
            guard state.track == .bug else { throw refuse("only a bug-track task can be escalated") }
            guard state.stage == .analysis, !state.status.isTerminal else {
                throw refuse("escalation is only possible during analysis")
            }
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
