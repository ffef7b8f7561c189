import Foundation

/// An approval that answers no stage: it was written when nothing awaited approval.
public struct ApprovalWithoutTarget: Error, CustomStringConvertible, Equatable {
    public let description: String
}

extension TaskLifecycle {
    /// Whether a change from `from` to `to` starts a new stage visit: the task becomes active in
    /// a stage it was not already active in (a new stage, an approval, a retry, a gate opened).
    public static func startsVisit(
        from: (stage: TaskStage, status: TaskStatus), to: (stage: TaskStage, status: TaskStatus)
    ) -> Bool {
        to.status == .active && to.stage != .done && (to.stage != from.stage || from.status != .active)
    }

    /// Refuses an `.approvedStage` that names another stage, or another wait for the same stage,
    /// than the one the task awaits approval of now (status is checked by the transition).
    static func checkApprovedStage(_ event: TaskEvent, state: TaskState, visit: Int) throws {
        guard case .approvedStage(let stage, let approvedVisit) = event else { return }
        if stage != state.stage {
            throw IllegalTransition(
                event: event.name, state: state,
                reason: "the approval is for \(stage.rawValue), but the task awaits approval of \(state.stage.rawValue)"
            )
        }
        if let approvedVisit, approvedVisit != visit {
            throw IllegalTransition(
                event: event.name, state: state,
                reason:
                    "the approval answers the wait for \(stage.rawValue) in visit \(approvedVisit), not the current one (visit \(visit))"
            )
        }
    }

    /// The stage visit an approval written at `writtenAt` answers, judged from the task's
    /// `history` (oldest first) and its `visit` now: the latest event at or before that moment must
    /// have left the task awaiting approval of a stage; the visit is today's minus the visits
    /// started since. Throws `ApprovalWithoutTarget` when nothing awaited approval then.
    ///
    /// A comment older than the whole history (clock skew) answers the task's first wait only, and
    /// only while the task still awaits it.
    ///
    /// A stage is awaited in one visit at most (leaving the wait always starts a visit or ends the
    /// task), so the visit tells an approval of this wait from one of an earlier wait for the same
    /// stage (review, after changes were requested).
    public static func approvalTarget(writtenAt: Date, history: [TaskHistoryEntry], visit: Int) throws -> StageVisit {
        let moment = writtenAt.timestampText
        guard let index = history.indices.last(where: { history[$0].at <= writtenAt }) else {
            // Written before anything happened to the task by the database's clock: a Plane clock
            // behind ours, or an example payload replayed. It cannot be placed on the timeline, so
            // it may answer only the task's first wait, and only while that wait is the current
            // one — never a later stage.
            let waits = history.filter { $0.toStatus == TaskStatus.awaitingApproval.rawValue }
            if waits.count == 1, let last = history.last, last.toStatus == TaskStatus.awaitingApproval.rawValue,
                let stage = TaskStage(rawValue: last.toStage)
            {
                return StageVisit(stage: stage, visit: visit)
            }
            throw ApprovalWithoutTarget(
                description: "written at \(moment), while the task was in its first stage (nothing awaited approval)")
        }
        let event = history[index]
        guard event.toStatus == TaskStatus.awaitingApproval.rawValue, let stage = TaskStage(rawValue: event.toStage)
        else {
            throw ApprovalWithoutTarget(
                description:
                    "written at \(moment), while the task was in \(event.toStage)/\(event.toStatus), not awaiting approval"
            )
        }
        let started = history[(index + 1)...].filter { entry in
            guard let from = entry.transition.from, let to = entry.transition.to else { return false }
            return startsVisit(from: from, to: to)
        }.count
        return StageVisit(stage: stage, visit: visit - started)
    }
}

extension TaskHistoryEntry {
    /// Creates an entry (tests build histories without a database).
    public init(
        event: String, from: (stage: TaskStage, status: TaskStatus), to: (stage: TaskStage, status: TaskStatus),
        reason: String? = nil, actor: String = "system", at: Date
    ) {
        self.event = event
        self.fromStage = from.stage.rawValue
        self.fromStatus = from.status.rawValue
        self.toStage = to.stage.rawValue
        self.toStatus = to.status.rawValue
        self.reason = reason
        self.actor = actor
        self.at = at
    }

    /// The stages and statuses before and after (nil for a value this build does not know).
    var transition: (from: (stage: TaskStage, status: TaskStatus)?, to: (stage: TaskStage, status: TaskStatus)?) {
        func pair(_ stage: String, _ status: String) -> (stage: TaskStage, status: TaskStatus)? {
            guard let stage = TaskStage(rawValue: stage), let status = TaskStatus(rawValue: status) else { return nil }
            return (stage, status)
        }
        return (pair(fromStage, fromStatus), pair(toStage, toStatus))
    }
}
