import Foundation
import Store
import TestSupport
import XCTest

/// The post-deploy watch across real `orchestrator serve` replicas: the replica running the watch
/// is killed (SIGKILL) mid-watch; the other one continues the same watch — same row, same window
/// end, its probe count carried on — and the task ends done.
final class PostDeployFailoverTests: XCTestCase {
    var harness: PipelineHarness!

    override func setUp() async throws {
        harness = try await PipelineHarness(suite: "postdeploy")
    }

    override func tearDown() async throws {
        await harness?.shutdown(testFailed: testRun?.hasSucceeded == false)
    }

    /// The replica killed and the watch as it was then.
    struct Killed: Sendable {
        let replica: String
        let probes: Int
        let startedAt: Date
    }

    /// A watch row's facts as the test follows them.
    private func watchRow() async throws -> (probes: Int, startedAt: Date, result: String)? {
        try await harness.database.pool.query(
            "SELECT probes, started_at, result FROM deploy_watches WHERE work_item = 'ORCH-98'"
        ).first.map { (try $0.decode("probes"), try $0.decode("started_at"), try $0.decode("result")) }
    }

    func testAReplicaKilledMidWatchLeavesTheWatchToTheOtherWhichFinishesIt() async throws {
        // Each probe takes 700 ms to answer, so the watch job is running much of the time.
        let health = HealthStandIn()
        health.answer(200, after: .milliseconds(700))
        let killed = try await StandInServer.with(health.router) { url -> Killed in
            let remote = try harness.makeRemote()
            let config = try harness.writeConfig(
                .init(
                    cloneURL: remote.path, deployCommand: ["true"],
                    extra: [
                        "health_url: \(url.appendingPathComponent("health").absoluteString)",
                        "post_deploy: { window: 20s, interval: 300ms, timeout: 5s, failures: 3 }",
                    ]))
            let base = try await harness.launch(0, config: config, environment: ["ORCH_POLL_INTERVAL": "200ms"])
            try await harness.launch(1, config: config, environment: ["ORCH_POLL_INTERVAL": "200ms"])
            try await harness.sendIssue(to: base)

            // Mid-watch: at least two probes recorded and the watch job running on a replica.
            var running: (replica: String, probes: Int, startedAt: Date)?
            let caught = try await waitUntil(timeout: .seconds(120)) {
                guard let watch = try await self.watchRow(), watch.probes >= 2 else { return false }
                running = try await self.harness.database.pool.query(
                    "SELECT locked_by FROM jobs WHERE kind = 'post_deploy_watch' AND status = 'running'"
                ).first.map { (try $0.decode("locked_by"), watch.probes, watch.startedAt) }
                return running != nil
            }
            XCTAssertTrue(caught, "the watch was caught running with probes recorded")
            let killed = try XCTUnwrap(running)
            let victim = try XCTUnwrap(harness.servers.firstIndex { killed.replica.hasPrefix($0.name + "-") })
            harness.servers[victim].signal(SIGKILL)

            let task = try await harness.waitUntilAtRest("ORCH-98", timeout: .seconds(90))
            XCTAssertEqual(task?.state.stage, .done)
            XCTAssertEqual(task?.state.status, .done)
            return Killed(replica: killed.replica, probes: killed.probes, startedAt: killed.startedAt)
        }
        let rows = try await harness.database.pool.query(
            "SELECT id FROM deploy_watches WHERE work_item = 'ORCH-98'"
        ).rows
        XCTAssertEqual(rows.count, 1, "one watch, continued rather than started again")
        let row = try await watchRow()
        let watch = try XCTUnwrap(row)
        XCTAssertEqual(watch.result, "healthy")
        XCTAssertGreaterThan(watch.probes, killed.probes, "probes went on after the kill, counted on from the same row")
        XCTAssertEqual(watch.startedAt, killed.startedAt, "the same window")
        let finisher = try await harness.database.pool.query(
            "SELECT locked_by FROM jobs WHERE kind = 'post_deploy_watch' AND status = 'completed'"
        ).rows.map { try $0.decode("locked_by", as: String.self) }
        XCTAssertEqual(finisher.count, 1)
        XCTAssertNotEqual(finisher.first, killed.replica, "the surviving replica finished the watch")
        let history = try await TaskStore(pool: harness.database.pool).history(workItem: "ORCH-98")
        XCTAssertEqual(history.filter { $0.fromStage == "deploy" }.map(\.event), ["stage_passed"])
        XCTAssertTrue(history.last?.reason?.contains("healthy for 20s") == true, history.last?.reason ?? "")
    }
}
