import Store
import XCTest

/// The task state machine, without a database.
final class TaskLifecycleTests: XCTestCase {
    private func run(_ events: [TaskEvent], from state: TaskState) throws -> TaskState {
        try events.reduce(state) { try TaskLifecycle.apply($1, to: $0) }
    }

    func testAutoFullTrackWalksEveryStage() throws {
        var state = TaskState.initial(track: .full, auto: true)
        var seen = [state.stage]
        while state.status != .done {
            state = try TaskLifecycle.apply(.stagePassed, to: state)
            XCTAssertTrue(state.status == .active || state.status == .done)
            seen.append(state.stage)
        }
        XCTAssertEqual(seen, [.analysis, .architecture, .development, .review, .merge, .deploy, .done])
        XCTAssertThrowsError(try TaskLifecycle.apply(.stagePassed, to: state))
    }

    func testBugTrackSkipsArchitecture() throws {
        let state = try TaskLifecycle.apply(.stagePassed, to: .initial(track: .bug, auto: true))
        XCTAssertEqual(state.stage, .development)
        XCTAssertEqual(TaskTrack.bug.stages, [.analysis, .development, .review, .merge, .deploy, .done])
    }

    func testWithoutAutoEachAgentStageAwaitsApproval() throws {
        var state = try TaskLifecycle.apply(.stagePassed, to: .initial(track: .full, auto: false))
        XCTAssertEqual(state, TaskState(stage: .architecture, status: .awaitingApproval, track: .full, auto: false))
        // Nothing runs until approved.
        XCTAssertThrowsError(try TaskLifecycle.apply(.stagePassed, to: state))
        state = try TaskLifecycle.apply(.approved, to: state)
        XCTAssertEqual(state.status, .active)
        // Review passes into merge awaiting approval; merge passes into deploy without asking.
        state = try run([.stagePassed, .approved, .stagePassed, .approved, .stagePassed, .approved], from: state)
        XCTAssertEqual(state.stage, .merge)
        state = try TaskLifecycle.apply(.stagePassed, to: state)
        XCTAssertEqual(state, TaskState(stage: .deploy, status: .active, track: .full, auto: false))
    }

    func testReviewCanSendTheTaskBackToDevelopment() throws {
        let review = TaskState(stage: .review, status: .active, track: .full, auto: true)
        XCTAssertEqual(try TaskLifecycle.apply(.changesRequested, to: review).stage, .development)
        let development = TaskState(stage: .development, status: .active, track: .full, auto: true)
        XCTAssertThrowsError(try TaskLifecycle.apply(.changesRequested, to: development)) { error in
            XCTAssertEqual((error as? IllegalTransition)?.reason, "only a review can request changes")
        }
    }

    /// Red CI at merge: back to development, whose first job carries the failed checks.
    func testRedCIAtMergeSendsTheTaskBackToDevelopmentWithTheChecksAsFeedback() throws {
        let merging = TaskState(stage: .merge, status: .active, track: .full, auto: true)
        let decided = try TaskLifecycle.decide(.ciFailed(feedback: "- ci/build: failure"), from: merging, visit: 5)
        XCTAssertEqual(decided.state, TaskState(stage: .development, status: .active, track: .full, auto: true))
        XCTAssertEqual(decided.eventName, "ci_failed")
        XCTAssertEqual(decided.visit, 6)
        XCTAssertEqual(
            decided.actions,
            [.enqueueStage(StageVisit(stage: .development, visit: 6), attempt: 0, feedback: "- ci/build: failure")])
        let review = TaskState(stage: .review, status: .active, track: .full, auto: true)
        XCTAssertThrowsError(try TaskLifecycle.apply(.ciFailed(feedback: ""), to: review)) { error in
            XCTAssertEqual((error as? IllegalTransition)?.reason, "only a merge waits for the pull request's CI")
        }
    }

    /// `/agent` while awaiting approval of a stage: the agent stage before it runs again.
    func testAgentFeedbackRunsTheStageThatAwaitsApprovalAgain() throws {
        let awaiting = TaskState(stage: .architecture, status: .awaitingApproval, track: .full, auto: false)
        let decided = try TaskLifecycle.decide(.agentFeedback(feedback: "more tests"), from: awaiting, visit: 1)
        XCTAssertEqual(decided.state, TaskState(stage: .analysis, status: .active, track: .full, auto: false))
        // Back in its first stage the task holds no serial-gate slot (SerialGate.occupies).
        XCTAssertEqual(
            decided.actions,
            [
                .openSerialGate,
                .enqueueStage(StageVisit(stage: .analysis, visit: 2), attempt: 0, feedback: "more tests"),
            ])
        let bugMerge = TaskState(stage: .development, status: .awaitingApproval, track: .bug, auto: false)
        XCTAssertEqual(try TaskLifecycle.apply(.agentFeedback(feedback: ""), to: bugMerge).stage, .analysis)
        // While the stage runs, its job ends with it: the same stage again, as a new visit.
        let active = TaskState(stage: .analysis, status: .active, track: .full, auto: false)
        let again = try TaskLifecycle.decide(.agentFeedback(feedback: "x"), from: active, visit: 3)
        XCTAssertEqual(again.state, active)
        XCTAssertEqual(
            again.actions, [.enqueueStage(StageVisit(stage: .analysis, visit: 4), attempt: 0, feedback: "x")])
        let merging = TaskState(stage: .merge, status: .active, track: .full, auto: false)
        XCTAssertThrowsError(try TaskLifecycle.apply(.agentFeedback(feedback: ""), to: merging))
    }

    func testFailureRetryHoldAndGates() throws {
        let active = TaskState(stage: .development, status: .active, track: .full, auto: true)
        XCTAssertEqual(try TaskLifecycle.apply(.stageFailed(final: false), to: active), active)
        let failed = try TaskLifecycle.apply(.stageFailed(final: true), to: active)
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(try TaskLifecycle.apply(.retry, to: failed), active)
        XCTAssertThrowsError(try TaskLifecycle.apply(.retry, to: active))

        let merging = TaskState(stage: .merge, status: .active, track: .full, auto: true)
        let held = try TaskLifecycle.apply(.held, to: merging)
        XCTAssertEqual(held.status, .held)
        XCTAssertEqual(try TaskLifecycle.apply(.retry, to: held), merging)
        XCTAssertThrowsError(try TaskLifecycle.apply(.held, to: active))

        let waiting = try TaskLifecycle.apply(.waitForGate, to: active)
        XCTAssertEqual(waiting.status, .waiting)
        XCTAssertEqual(try TaskLifecycle.apply(.gateOpened, to: waiting), active)
        XCTAssertThrowsError(try TaskLifecycle.apply(.gateOpened, to: active))

        let blocked = try TaskLifecycle.apply(.blocked, to: .initial(track: .full, auto: true))
        XCTAssertEqual(blocked.status, .blocked)
        XCTAssertThrowsError(try TaskLifecycle.apply(.stagePassed, to: blocked))
        XCTAssertEqual(try TaskLifecycle.apply(.unblocked, to: blocked).status, .active)
    }

    func testCancelFromAnyLiveStateButNotTwice() throws {
        for status in TaskStatus.allCases {
            let state = TaskState(stage: .development, status: status, track: .full, auto: false)
            if status.isTerminal {
                XCTAssertThrowsError(try TaskLifecycle.apply(.cancel, to: state), "\(status)")
            } else {
                XCTAssertEqual(try TaskLifecycle.apply(.cancel, to: state).status, .cancelled, "\(status)")
            }
        }
    }

    func testEscalationOnlyFromBugTrackDuringAnalysis() throws {
        let bug = TaskState.initial(track: .bug, auto: false)
        let escalated = try TaskLifecycle.apply(.escalate, to: bug)
        XCTAssertEqual(escalated.track, .full)
        // After escalation the architecture stage is back.
        XCTAssertEqual(
            try TaskLifecycle.apply(
                .stagePassed, to: TaskState(stage: .analysis, status: .active, track: escalated.track, auto: true)
            ).stage, .architecture)
        XCTAssertThrowsError(try TaskLifecycle.apply(.escalate, to: escalated))
        let developing = TaskState(stage: .development, status: .active, track: .bug, auto: true)
        XCTAssertThrowsError(try TaskLifecycle.apply(.escalate, to: developing)) { error in
            XCTAssertEqual((error as? IllegalTransition)?.reason, "escalation is only possible during analysis")
        }
    }

    func testIllegalTransitionSaysWhatAndWhy() {
        let done = TaskState(stage: .done, status: .done, track: .full, auto: true)
        XCTAssertThrowsError(try TaskLifecycle.apply(.approved, to: done)) { error in
            XCTAssertEqual(
                "\(error)",
                "cannot apply 'approved' to a task in done/done (full track): needs status awaiting_approval")
        }
    }

    // MARK: Decisions with their actions (no database)

    private let analysis = TaskState(stage: .analysis, status: .active, track: .full, auto: true)

    func testAPassStartsTheNextStageVisitWithItsFirstJob() throws {
        let transition = try TaskLifecycle.decide(
            .stagePassed, from: analysis, visit: 1, about: StageVisit(stage: .analysis, visit: 1))
        XCTAssertEqual(transition.state.stage, .architecture)
        XCTAssertEqual(transition.visit, 2)
        XCTAssertEqual(
            transition.actions, [.enqueueStage(StageVisit(stage: .architecture, visit: 2), attempt: 0, feedback: nil)])
        // Without auto the next stage waits for approval: no job, no new visit until approved.
        var manual = analysis
        manual.auto = false
        let waiting = try TaskLifecycle.decide(.stagePassed, from: manual, visit: 1)
        XCTAssertEqual(waiting.actions, [])
        XCTAssertEqual(waiting.visit, 1)
        let approved = try TaskLifecycle.decide(.approved, from: waiting.state, visit: waiting.visit)
        XCTAssertEqual(
            approved.actions, [.enqueueStage(StageVisit(stage: .architecture, visit: 2), attempt: 0, feedback: nil)])
    }

    func testAGateFailureRetriesTheSameVisitThenFailsWithALesson() throws {
        let policy = StagePolicy(maxGateFailures: 3, maxReviewRounds: 3)
        let retry = try TaskLifecycle.decide(
            .gateFailed(reason: "spec.md missing", attempt: 1), from: analysis, visit: 4, policy: policy)
        XCTAssertEqual(retry.eventName, "stage_failed")
        XCTAssertEqual(retry.state, analysis)
        XCTAssertEqual(retry.visit, 4, "a retry stays in the visit")
        XCTAssertEqual(
            retry.actions,
            [.enqueueStage(StageVisit(stage: .analysis, visit: 4), attempt: 2, feedback: "spec.md missing")])
        let final = try TaskLifecycle.decide(
            .gateFailed(reason: "spec.md missing", attempt: 2), from: analysis, visit: 4, policy: policy)
        XCTAssertEqual(final.eventName, "stage_failed_final")
        XCTAssertEqual(final.state.status, .failed)
        XCTAssertEqual(final.actions, [.recordLesson(type: "gate_failure", rootCause: "spec.md missing")])
        // An operator's retry starts a new visit.
        let retried = try TaskLifecycle.decide(.retry, from: final.state, visit: final.visit)
        XCTAssertEqual(
            retried.actions, [.enqueueStage(StageVisit(stage: .analysis, visit: 5), attempt: 0, feedback: nil)])
    }

    func testReviewRoundsAreBounded() throws {
        let review = TaskState(stage: .review, status: .active, track: .full, auto: true)
        let back = try TaskLifecycle.decide(
            .reviewRequestedChanges(round: 2), from: review, visit: 7, policy: StagePolicy(maxReviewRounds: 2))
        XCTAssertEqual(back.eventName, "changes_requested")
        XCTAssertEqual(back.state.stage, .development)
        XCTAssertEqual(
            back.actions, [.enqueueStage(StageVisit(stage: .development, visit: 8), attempt: 0, feedback: nil)])
        let over = try TaskLifecycle.decide(
            .reviewRequestedChanges(round: 3), from: review, visit: 7, policy: StagePolicy(maxReviewRounds: 2))
        XCTAssertEqual(over.eventName, "stage_failed_final")
        XCTAssertEqual(over.state, TaskState(stage: .review, status: .failed, track: .full, auto: true))
        XCTAssertEqual(
            over.actions,
            [
                .recordLesson(type: "gate_failure", rootCause: "review requested changes 3 times (limit 2)"),
                // A failed task gives up its slot of the serial gate.
                .openSerialGate,
            ])
    }

    /// A stage job that failed for good holds the task (or fails it when retrying cannot help) in
    /// any stage, with a lesson of the journal's type; `/retry` then starts a new visit.
    func testAStageErrorHoldsOrFailsTheTaskInAnyStageWithALesson() throws {
        let development = TaskState(stage: .development, status: .active, track: .full, auto: true)
        let held = try TaskLifecycle.decide(
            .stageErrored(reason: "push rejected", canRetry: true), from: development, visit: 3)
        XCTAssertEqual(held.eventName, "stage_error")
        XCTAssertEqual(held.state, TaskState(stage: .development, status: .held, track: .full, auto: true))
        XCTAssertEqual(held.visit, 3)
        XCTAssertEqual(
            held.actions, [.recordLesson(type: "transient_exhaustion", rootCause: "push rejected"), .openSerialGate])
        let failed = try TaskLifecycle.decide(
            .stageErrored(reason: "no agent", canRetry: false), from: development, visit: 3)
        XCTAssertEqual(failed.state.status, .failed)
        XCTAssertEqual(failed.actions, [.recordLesson(type: "other", rootCause: "no agent"), .openSerialGate])
        let merge = TaskState(stage: .merge, status: .active, track: .full, auto: true)
        let mergeHeld = try TaskLifecycle.decide(
            .stageErrored(reason: "Gitea down", canRetry: true), from: merge, visit: 5)
        XCTAssertEqual(
            mergeHeld.actions, [.recordLesson(type: "merge_hold", rootCause: "Gitea down"), .openSerialGate])
        XCTAssertEqual(
            try TaskLifecycle.decide(.held, from: merge, visit: 5).actions,
            [.recordLesson(type: "merge_hold", rootCause: nil), .openSerialGate])
        let retried = try TaskLifecycle.decide(.retry, from: held.state, visit: held.visit)
        XCTAssertEqual(
            retried.actions, [.enqueueStage(StageVisit(stage: .development, visit: 4), attempt: 0, feedback: nil)])
        XCTAssertThrowsError(
            try TaskLifecycle.decide(.stageErrored(reason: "x", canRetry: true), from: held.state, visit: 3))
    }

    func testACancelCancelsTheStageJobs() throws {
        let transition = try TaskLifecycle.decide(.cancel, from: analysis, visit: 1)
        XCTAssertEqual(transition.state.status, .cancelled)
        XCTAssertEqual(transition.actions, [.cancelStageJobs])
    }

    func testAnOutcomeAboutAnotherVisitIsStale() {
        // A late review pass (visit 5) once the task is merging (visit 6) moves nothing.
        let merging = TaskState(stage: .merge, status: .active, track: .full, auto: true)
        XCTAssertThrowsError(
            try TaskLifecycle.decide(.stagePassed, from: merging, visit: 6, about: StageVisit(stage: .review, visit: 5))
        ) {
            let stale = $0 as? StaleOutcome
            XCTAssertEqual(stale?.about, StageVisit(stage: .review, visit: 5))
            XCTAssertEqual(stale?.visit, 6)
            XCTAssertEqual(stale?.state, merging)
        }
        // The same stage in a later visit (review again after changes) is stale too.
        let review = TaskState(stage: .review, status: .active, track: .full, auto: true)
        XCTAssertThrowsError(
            try TaskLifecycle.decide(.stagePassed, from: review, visit: 9, about: StageVisit(stage: .review, visit: 5)))
        // And an outcome for the right visit of a task no longer active (held, cancelled).
        let held = TaskState(stage: .merge, status: .held, track: .full, auto: true)
        XCTAssertThrowsError(
            try TaskLifecycle.decide(.stagePassed, from: held, visit: 6, about: StageVisit(stage: .merge, visit: 6)))
    }

    // MARK: Approvals bound to the stage (and the wait) they answer

    func testAnApprovalNamingAStageIsRefusedForAnyOtherStageOrWait() throws {
        let waiting = TaskState(stage: .architecture, status: .awaitingApproval, track: .full, auto: false)
        let approved = try TaskLifecycle.decide(.approvedStage(.architecture, visit: nil), from: waiting, visit: 1)
        XCTAssertEqual(approved.eventName, "approved")
        XCTAssertEqual(approved.state.status, .active)
        XCTAssertEqual(
            approved.actions, [.enqueueStage(StageVisit(stage: .architecture, visit: 2), attempt: 0, feedback: nil)])
        XCTAssertEqual(
            try TaskLifecycle.decide(.approvedStage(.architecture, visit: 1), from: waiting, visit: 1).state.status,
            .active)
        XCTAssertThrowsError(
            try TaskLifecycle.decide(.approvedStage(.development, visit: nil), from: waiting, visit: 1)
        ) {
            XCTAssertEqual(
                "\($0)",
                "cannot apply 'approved' to a task in architecture/awaiting_approval (full track): "
                    + "the approval is for development, but the task awaits approval of architecture")
        }
        XCTAssertThrowsError(try TaskLifecycle.decide(.approvedStage(.architecture, visit: 0), from: waiting, visit: 1))
        {
            XCTAssertEqual(
                ($0 as? IllegalTransition)?.reason,
                "the approval answers the wait for architecture in visit 0, not the current one (visit 1)")
        }
        // A task not awaiting approval refuses any approval, named or not.
        let active = TaskState(stage: .architecture, status: .active, track: .full, auto: false)
        XCTAssertThrowsError(
            try TaskLifecycle.decide(.approvedStage(.architecture, visit: nil), from: active, visit: 2)
        ) {
            XCTAssertEqual(($0 as? IllegalTransition)?.reason, "needs status awaiting_approval")
        }
    }

    /// Walks the real state machine through `events`, one second apart from `start`, recording the
    /// history a database would hold; returns it with the final state and visit.
    private func walk(
        _ events: [TaskEvent], start: Date
    ) throws -> (history: [TaskHistoryEntry], state: TaskState, visit: Int) {
        var state = TaskState.initial(track: .full, auto: false)
        var visit = 1
        var history: [TaskHistoryEntry] = []
        for (offset, event) in events.enumerated() {
            let transition = try TaskLifecycle.decide(event, from: state, visit: visit)
            history.append(
                TaskHistoryEntry(
                    event: transition.eventName, from: (state.stage, state.status),
                    to: (transition.state.stage, transition.state.status),
                    at: start.addingTimeInterval(Double(offset + 1))))
            (state, visit) = (transition.state, transition.visit)
        }
        return (history, state, visit)
    }

    func testACommentApprovesTheWaitItWasWrittenIn() throws {
        let t0 = Date(timeIntervalSince1970: 1_780_000_000)
        func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }
        // 1 s: architecture awaits; 2 s: approved; 3 s: development awaits; 4 s: approved;
        // 5 s: review awaits (visit 3); 6 s: approved; 7 s: changes requested; 8 s: review awaits again (visit 5).
        let (history, state, visit) = try walk(
            [
                .stagePassed, .approved, .stagePassed, .approved, .stagePassed, .approved, .changesRequested,
                .stagePassed,
            ], start: t0)
        XCTAssertEqual(state, TaskState(stage: .review, status: .awaitingApproval, track: .full, auto: false))
        XCTAssertEqual(visit, 5)
        func target(_ seconds: Double) throws -> StageVisit {
            try TaskLifecycle.approvalTarget(writtenAt: at(seconds), history: history, visit: visit)
        }
        XCTAssertThrowsError(try target(0.5)) {
            XCTAssertEqual(
                "\($0)",
                "written at 2026-05-28T20:26:40.500000Z, while the task was in its first stage (nothing awaited approval)"
            )
        }
        XCTAssertEqual(try target(1), StageVisit(stage: .architecture, visit: 1), "an event at the very moment counts")
        XCTAssertThrowsError(try target(2.5)) {
            XCTAssertEqual(
                "\($0)",
                "written at 2026-05-28T20:26:42.500000Z, while the task was in architecture/active, not awaiting approval"
            )
        }
        XCTAssertEqual(try target(5.5), StageVisit(stage: .review, visit: 3))
        XCTAssertEqual(try target(8.5), StageVisit(stage: .review, visit: 5))
        // Only the approval written in the current wait applies; one for an earlier stage or an
        // earlier wait for review is refused by the state machine.
        let current = try target(8.5)
        XCTAssertEqual(
            try TaskLifecycle.decide(.approvedStage(current.stage, visit: current.visit), from: state, visit: visit)
                .visit, 6)
        for seconds in [1.5, 5.5] {
            let earlier = try target(seconds)
            XCTAssertThrowsError(
                try TaskLifecycle.decide(.approvedStage(earlier.stage, visit: earlier.visit), from: state, visit: visit)
            )
        }
    }

    func testTimestampsKeepTheirMicroseconds() throws {
        let first = try XCTUnwrap(Date(timestamp: "2026-06-01T09:02:40.100200Z"))
        let second = try XCTUnwrap(Date(timestamp: "2026-06-01T09:02:40.100203Z"))
        XCTAssertLessThan(first, second, "three microseconds apart still order")
        XCTAssertEqual(first.timestampText, "2026-06-01T09:02:40.100200Z")
        XCTAssertEqual(second.timestampText, "2026-06-01T09:02:40.100203Z")
        XCTAssertEqual(Date(timestamp: "2026-06-01T11:02:40.100200+02:00"), first)
        XCTAssertEqual(Date(timestamp: "2026-06-01T09:02:40Z")?.timestampText, "2026-06-01T09:02:40.000000Z")
        for bad in ["2026-06-01", "infinity", "yesterday", "2026-06-01T09:02", ""] {
            XCTAssertNil(Date(timestamp: bad), bad)
        }
    }
}
