import Store
import XCTest

/// The serial gate's rule and its part in the task state machine, without a database.
final class SerialGateTests: XCTestCase {
    let closed = SerialGate.Verdict.closed(reason: "waiting: the serial gate is full (1 of 1 active)")

    func testTheFirstStageTakesNoSlotAndEveryLaterOneDoes() {
        for track in TaskTrack.allCases {
            XCTAssertFalse(SerialGate.occupies(.initial(track: track, auto: true)))
        }
        XCTAssertTrue(SerialGate.occupies(TaskState(stage: .architecture, status: .active, track: .full, auto: true)))
        XCTAssertTrue(
            SerialGate.occupies(TaskState(stage: .development, status: .awaitingApproval, track: .full, auto: false)))
        // A held, waiting, failed, cancelled or finished task has no slot: a freeze is what stops
        // the next task after a bad merge, and an unfreeze lets it go.
        for status in [TaskStatus.held, .waiting, .failed, .cancelled, .blocked] {
            XCTAssertFalse(SerialGate.occupies(TaskState(stage: .merge, status: status, track: .full, auto: true)))
        }
        XCTAssertFalse(SerialGate.occupies(TaskState(stage: .done, status: .done, track: .full, auto: true)))
    }

    func testVerdict() {
        XCTAssertEqual(SerialGate.verdict(limit: 1, occupied: 0, frozen: false, frozenReason: nil), .open)
        XCTAssertEqual(SerialGate.verdict(limit: nil, occupied: 50, frozen: false, frozenReason: nil), .open)
        XCTAssertEqual(
            SerialGate.verdict(limit: 2, occupied: 2, frozen: false, frozenReason: nil),
            .closed(reason: "waiting: the serial gate is full (2 of 2 active)"))
        guard case .closed(let reason) = SerialGate.verdict(limit: nil, occupied: 0, frozen: true, frozenReason: "red")
        else { return XCTFail("a frozen repository starts nothing") }
        XCTAssertTrue(reason.contains("frozen (red)"))
    }

    func testPassingTheFirstStageWithTheGateClosedWaitsAndStartsNothing() throws {
        let transition = try TaskLifecycle.decide(
            .stagePassed, from: .initial(track: .full, auto: true), visit: 1, gate: closed)
        XCTAssertEqual(transition.state, TaskState(stage: .architecture, status: .waiting, track: .full, auto: true))
        XCTAssertEqual(transition.visit, 1)
        XCTAssertEqual(transition.actions, [])
        // Open, the same event starts the next stage.
        let open = try TaskLifecycle.decide(.stagePassed, from: .initial(track: .full, auto: true), visit: 1)
        XCTAssertEqual(open.state.status, .active)
        XCTAssertEqual(
            open.actions, [.enqueueStage(StageVisit(stage: .architecture, visit: 2), attempt: 0, feedback: nil)])
    }

    func testTheGateOpeningStartsTheStageOrTheApprovalItWouldHaveHad() throws {
        let waiting = TaskState(stage: .architecture, status: .waiting, track: .full, auto: true)
        let opened = try TaskLifecycle.decide(.gateOpened, from: waiting, visit: 1)
        XCTAssertEqual(opened.state.status, .active)
        XCTAssertEqual(
            opened.actions, [.enqueueStage(StageVisit(stage: .architecture, visit: 2), attempt: 0, feedback: nil)])
        var manual = waiting
        manual.auto = false
        let approval = try TaskLifecycle.decide(.gateOpened, from: manual, visit: 1)
        XCTAssertEqual(approval.state.status, .awaitingApproval)
        XCTAssertEqual(approval.actions, [])
    }

    func testGivingUpASlotOpensTheGate() throws {
        let deploying = TaskState(stage: .deploy, status: .active, track: .full, auto: true)
        XCTAssertEqual(
            try TaskLifecycle.decide(.stagePassed, from: deploying, visit: 7).actions,
            [.openSerialGate, .releaseDependents])
        XCTAssertTrue(try TaskLifecycle.decide(.cancel, from: deploying, visit: 7).actions.contains(.openSerialGate))
        let merging = TaskState(stage: .merge, status: .active, track: .full, auto: true)
        XCTAssertEqual(
            try TaskLifecycle.decide(.held, from: merging, visit: 7).actions,
            [.recordLesson(type: "merge_hold", rootCause: nil), .openSerialGate])
        // Moving between stages keeps the slot: nothing to open.
        let developing = TaskState(stage: .development, status: .active, track: .full, auto: true)
        XCTAssertEqual(
            try TaskLifecycle.decide(.stagePassed, from: developing, visit: 3).actions,
            [.enqueueStage(StageVisit(stage: .review, visit: 4), attempt: 0, feedback: nil)])
        // A retried failed task takes a slot again, so it too waits when the gate is closed.
        let failed = TaskState(stage: .review, status: .failed, track: .full, auto: true)
        XCTAssertEqual(try TaskLifecycle.decide(.retry, from: failed, visit: 4, gate: closed).state.status, .waiting)
    }
}
