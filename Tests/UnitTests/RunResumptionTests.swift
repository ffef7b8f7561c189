import Store
import XCTest

@testable import Workers

/// What a retried agent-stage job does with an earlier attempt's work, without git or a database.
final class RunResumptionTests: XCTestCase {
    let base = "b0"
    let committed = "c1"

    func work(pushed: String?) -> AgentRunStore.RunWork {
        AgentRunStore.RunWork(runID: 7, base: base, committed: committed, pushed: pushed)
    }

    func testNoEarlierWorkRunsTheAgent() {
        XCTAssertEqual(RunResumption.decide(work: nil, head: base, remote: base, hasCommit: false), .runAgent)
    }

    func testPushedWorkStillAtTheHeadIsJudgedAgain() {
        let pushed = work(pushed: committed)
        XCTAssertEqual(
            RunResumption.decide(work: pushed, head: committed, remote: committed, hasCommit: false), .judge(pushed))
        // The push went through but was never recorded (a crash right after it): the same.
        let unrecorded = work(pushed: nil)
        XCTAssertEqual(
            RunResumption.decide(work: unrecorded, head: committed, remote: committed, hasCommit: true),
            .judge(unrecorded))
    }

    func testAFailedPushIsPushedAgainFromThisReplicasCommit() {
        let failed = work(pushed: nil)
        XCTAssertEqual(
            RunResumption.decide(work: failed, head: base, remote: base, hasCommit: true),
            .pushAgain(failed, expecting: .at(base)))
        // The branch did not exist yet (analysis' first run): it must still not exist.
        XCTAssertEqual(
            RunResumption.decide(work: failed, head: "main-tip", remote: nil, hasCommit: true),
            .pushAgain(failed, expecting: .absent))
    }

    func testWorkThatCannotBeUsedRunsTheAgentAgain() {
        XCTAssertEqual(
            RunResumption.decide(
                work: work(pushed: committed), head: "someone-else", remote: "someone-else", hasCommit: true),
            .runAgain(because: "the branch moved on from the pushed work"))
        XCTAssertEqual(
            RunResumption.decide(work: work(pushed: nil), head: "moved", remote: "moved", hasCommit: true),
            .runAgain(because: "the branch moved on from where the run started"))
        XCTAssertEqual(
            RunResumption.decide(work: work(pushed: nil), head: base, remote: base, hasCommit: false),
            .runAgain(because: "the run's commit was made on another replica"))
    }
}
