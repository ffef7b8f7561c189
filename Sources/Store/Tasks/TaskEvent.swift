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
    /// The pull request's head failed CI at merge and a CI fix round is left: back to development,
    /// whose first job gets `feedback` (the failed checks).
    case ciFailed(feedback: String)
    /// Reviews or comments on the pull request asked for changes before the merge: back to
    /// development, whose first job gets `feedback` (what they said).
    case reviewFeedback(feedback: String)
    /// A person's `/agent <text>` while the task awaits approval after an agent stage: that stage
    /// runs again with `feedback` (the text).
    case agentFeedback(feedback: String)
    /// A budget ran out before an agent run: the task waits for approval in its stage, `reason`
    /// giving the figures; `/approve` lets it go on for one run.
    case budgetExceeded(reason: String)
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
    /// The post-deploy watch found the deployed service unhealthy (`failures` probes of
    /// `health_url` in a row failed): the deploying task is held with the reason.
    case deployDegraded(reason: String)
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

    /// What the stage visit this event starts is told (red CI's checks, the reviewers' words).
    var feedback: String? {
        switch self {
        case .ciFailed(let feedback), .reviewFeedback(let feedback), .agentFeedback(let feedback): feedback
        default: nil
        }
    }

    /// A short name for logs and `task_events`.
    public var name: String {
        switch self {
        case .stagePassed: return "stage_passed"
        case .approved, .approvedStage: return "approved"
        case .stageFailed(let final): return final ? "stage_failed_final" : "stage_failed"
        case .gateFailed: return "stage_failed"
        case .changesRequested, .reviewRequestedChanges: return "changes_requested"
        case .ciFailed: return "ci_failed"
        case .reviewFeedback: return "review_feedback"
        case .agentFeedback: return "agent_feedback"
        case .budgetExceeded: return "budget_exceeded"
        case .blocked: return "blocked"
        case .unblocked: return "unblocked"
        case .waitForGate: return "wait_for_gate"
        case .gateOpened: return "gate_opened"
        case .held: return "held"
        case .deployDegraded: return "deploy_degraded"
        case .stageErrored: return "stage_error"
        case .retry: return "retry"
        case .cancel: return "cancel"
        case .escalate: return "escalate"
        }
    }
}
