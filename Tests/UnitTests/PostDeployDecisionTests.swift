import Foundation
import Store
import XCTest

@testable import Workers

/// What the post-deploy watch does next, from its facts and the database's clock: probe, wait,
/// healthy or degraded. And the one transition a degraded deploy makes.
final class PostDeployDecisionTests: XCTestCase {
    let start = Date(timeIntervalSince1970: 1_800_000_000)
    let settings = RepositoryGates.PostDeploy(
        window: .seconds(60), interval: .seconds(10), timeout: .seconds(5), failures: 3)

    private func next(
        probes: Int = 0, failing: Int = 0, lastProbe: TimeInterval? = nil, now: TimeInterval
    ) -> PostDeployDecision {
        PostDeployDecision.next(
            probes: probes, consecutiveFailures: failing, startedAt: start,
            lastProbeAt: lastProbe.map { start.addingTimeInterval($0) }, now: start.addingTimeInterval(now),
            settings: settings)
    }

    func testTheFirstProbeIsAtOnce() {
        XCTAssertEqual(next(now: 0), .probe)
        // A watch resumed late (its replica died) still probes before anything else.
        XCTAssertEqual(next(now: 30), .probe)
    }

    func testBetweenProbesItWaitsForTheInterval() {
        XCTAssertEqual(next(probes: 1, lastProbe: 0.5, now: 1), .wait(.milliseconds(9500)))
        XCTAssertEqual(next(probes: 1, lastProbe: 0.5, now: 10.5), .probe)
        // A failure below the threshold changes nothing about the cadence.
        XCTAssertEqual(next(probes: 2, failing: 2, lastProbe: 20, now: 25), .wait(.seconds(5)))
    }

    func testTheWindowIsCountedFromTheStartNotFromTheResumption() {
        // The next probe would be after the window: wait only until the window ends.
        XCTAssertEqual(next(probes: 6, lastProbe: 55, now: 56), .wait(.seconds(4)))
        XCTAssertEqual(next(probes: 6, lastProbe: 55, now: 60), .healthy)
        XCTAssertEqual(next(probes: 1, lastProbe: 2, now: 200), .healthy, "resumed after the window: healthy")
    }

    func testFailuresInARowDegradeAndOnlyThen() {
        XCTAssertEqual(next(probes: 3, failing: 3, lastProbe: 20, now: 20), .degraded)
        XCTAssertEqual(next(probes: 5, failing: 3, lastProbe: 59, now: 61), .degraded, "degraded wins at the end")
        XCTAssertEqual(next(probes: 5, failing: 2, lastProbe: 59, now: 61), .healthy, "below the threshold")
    }

    func testADegradedDeployHoldsTheTaskWithALessonAndOnlyInDeploy() throws {
        let deploying = TaskState(stage: .deploy, status: .active, track: .full, auto: true)
        let transition = try TaskLifecycle.decide(
            .deployDegraded(reason: "3 probes failed"), from: deploying, visit: 7,
            about: StageVisit(stage: .deploy, visit: 7))
        XCTAssertEqual(transition.eventName, "deploy_degraded")
        XCTAssertEqual(transition.state, TaskState(stage: .deploy, status: .held, track: .full, auto: true))
        XCTAssertEqual(transition.visit, 7)
        // The held task gives its slot up (the freeze is what holds the next task back).
        XCTAssertEqual(
            transition.actions,
            [.recordLesson(type: "degraded_deploy", rootCause: "3 probes failed"), .openSerialGate])

        var merging = deploying
        merging.stage = .merge
        XCTAssertThrowsError(try TaskLifecycle.apply(.deployDegraded(reason: "x"), to: merging))
        var held = deploying
        held.status = .held
        XCTAssertThrowsError(try TaskLifecycle.apply(.deployDegraded(reason: "x"), to: held))
        // An operator's /retry deploys again.
        XCTAssertEqual(try TaskLifecycle.apply(.retry, to: transition.state), deploying)
    }
}
