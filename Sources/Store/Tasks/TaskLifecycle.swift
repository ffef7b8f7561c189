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
    ///
    /// `gate` is the serial gate's verdict for the task's repository: closed, a task that would
    /// take a slot (``SerialGate/occupies(_:)``) waits instead; a task that gives one up opens
    /// the gate for the next (`.openSerialGate`).
    public static func decide(
        _ event: TaskEvent, from state: TaskState, visit: Int, about: StageVisit? = nil, policy: StagePolicy = .init(),
        gate: SerialGate.Verdict = .open
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
        case .deployDegraded(let reason):
            // The journal's own type for this (0005_lessons.sql), whatever the event is called.
            actions.append(.recordLesson(type: "degraded_deploy", rootCause: reason))
        default:
            break
        }
        if case .closed = gate, !SerialGate.occupies(state), SerialGate.occupies(next) {
            next.status = .waiting
        }
        if SerialGate.occupies(state), !SerialGate.occupies(next) {
            actions.append(.openSerialGate)
        }
        if next.status == .done, state.status != .done {
            actions.append(.releaseDependents)
        }
        // A task that becomes active in a stage (a new stage, an approval, a retry, a gate
        // opened) starts a new visit with that stage's first job, exactly once.
        var nextVisit = visit
        // `/agent` while the stage runs starts the same stage again, as a new visit.
        var again = false
        if case .agentFeedback = event, state.status == .active { again = true }
        if again || startsVisit(from: (state.stage, state.status), to: (next.stage, next.status)) {
            nextVisit = visit + 1
            // Red CI's checks, or the reviewers' words, go to the development run it starts.
            actions.append(
                .enqueueStage(StageVisit(stage: next.stage, visit: nextVisit), attempt: 0, feedback: event.feedback))
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
        case .ciFailed:
            try require(.active)
            guard state.stage == .merge else { throw refuse("only a merge waits for the pull request's CI") }
            next.stage = .development
        case .agentFeedback where state.status == .active:
            // The running agent stage's job ends with it: the stage runs again.
            guard state.stage.isAgentStage else { throw refuse("/agent applies to an agent stage") }
        case .agentFeedback:
            // Awaiting approval of a stage means the stage before it has just passed: that one
            // runs again.
            try require(.awaitingApproval)
            let stages = state.track.stages
            guard let index = stages.firstIndex(of: state.stage), index > 0, stages[index - 1].isAgentStage else {
                throw refuse("no agent stage precedes \(state.stage.rawValue)")
            }
            next.stage = stages[index - 1]
            next.status = .active
        case .budgetExceeded:
            try require(.active)
            guard state.stage.isAgentStage else { throw refuse("only an agent stage spends a budget") }
            next.status = .awaitingApproval
        case .reviewFeedback:
            try require(.active)
            guard state.stage == .merge else { throw refuse("only a merge applies the pull request's reviews") }
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
            next.status = SerialGate.released(state)
        case .held:
            try require(.active)
            guard state.stage == .merge else { throw refuse("only a merge can be held") }
            next.status = .held
        case .deployDegraded:
            // The one hold outside merge: the deployed service is unhealthy. Like every held task
            // it gives its serial-gate slot up (``SerialGate/occupies(_:)``); the freeze recorded
            // with it is what keeps the repository's next task from starting.
            try require(.active)
            guard state.stage == .deploy else { throw refuse("only a deploy can be degraded") }
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
