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
        XCTAssertEqual(try TaskLifecycle.apply(.stagePassed, to: TaskState(stage: .analysis, status: .active, track: escalated.track, auto: true)).stage, .architecture)
        XCTAssertThrowsError(try TaskLifecycle.apply(.escalate, to: escalated))
        let developing = TaskState(stage: .development, status: .active, track: .bug, auto: true)
        XCTAssertThrowsError(try TaskLifecycle.apply(.escalate, to: developing)) { error in
            XCTAssertEqual((error as? IllegalTransition)?.reason, "escalation is only possible during analysis")
        }
    }

    func testIllegalTransitionSaysWhatAndWhy() {
        let done = TaskState(stage: .done, status: .done, track: .full, auto: true)
        XCTAssertThrowsError(try TaskLifecycle.apply(.approved, to: done)) { error in
            XCTAssertEqual("\(error)", "cannot apply 'approved' to a task in done/done (full track): needs status awaiting_approval")
        }
    }
}
