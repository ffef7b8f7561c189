import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Workers

/// The post-deploy watch's job against the real database and a local `health_url` stand-in that
/// can be made to fail, with a short window and interval: healthy → the task is done; `failures`
/// failed probes in a row → held with the reason, the repository frozen, a `degraded_deploy`
/// lesson and an alert; an isolated failure does not degrade. The job is driven as the queue
/// worker drives it: claimed when due, postponed between probes, completed by its outcome.
final class PostDeployWatchTests: DatabaseTestCase {
    var tasks: TaskStore!
    var jobs: JobStore!
    let replica = "replica-watch"
    let workItem = "ORCH-9"
    let mergeSHA = String(repeating: "e", count: 40)

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        jobs = JobStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(
            id: replica, name: replica, host: "test", pid: 1, role: "worker")
        _ = try await tasks.upsert(
            workItem: workItem, repo: "acme/orch", title: "t", description: "", labels: ["auto"], track: .full,
            auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
    }

    private func repo(health: URL, _ settings: RepositoryGates.PostDeploy) -> RepositorySettings {
        RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: "/nonexistent", defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: ["true"],
            healthURL: health.appendingPathComponent("health").absoluteString,
            gates: RepositoryGates(postDeploy: settings))
    }

    /// Walks the task to deploy and hands its deploy job over to the watch, as a deploy job whose
    /// `deploy_command` succeeded does.
    private func handOver(_ repo: RepositorySettings) async throws -> DeployWatch {
        for _ in 0..<5 { _ = try await tasks.apply(.stagePassed, workItem: workItem, actor: "test") }
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 10, lease: .seconds(60))
        let deploy = try XCTUnwrap(claimed.first { (try? RunStageJob.payload(of: $0).stage) == "deploy" })
        for job in claimed where job.id != deploy.id { _ = try await jobs.complete(try XCTUnwrap(job.lease)) }
        let watch = try await DeployWatchStore(pool: database.pool).start(
            .init(workItem: workItem, repo: repo.repo, mergeSHA: mergeSHA, healthURL: try XCTUnwrap(repo.healthURL)),
            about: task.currentVisit, fence: try XCTUnwrap(deploy.lease))
        return try XCTUnwrap(watch)
    }

    /// Runs the watch job as the worker would (claimed when due, postponed between probes) until
    /// the task is no longer active and no watch job is left (or `deadline`).
    private func runWatch(_ watch: PostDeployWatch, deadline: Duration = .seconds(30)) async throws {
        let finished = try await waitUntil(timeout: deadline) {
            let claimed = try await self.jobs.claim(
                queues: ["default"], replicaID: self.replica, limit: 1, lease: .seconds(60))
            if let job = claimed.first {
                XCTAssertEqual(job.kind, PostDeployWatchJob.kind)
                let context = JobContext(job: job, lease: try XCTUnwrap(job.lease), baseLogger: Logger(label: "test"))
                do {
                    try await watch.run(context)
                    if !context.completion.isCompleted { _ = try await self.jobs.complete(context.lease) }
                } catch let postponed as JobPostponed {
                    _ = try await postponed.record(context.lease, in: self.jobs)
                }
            }
            let live = try await self.database.pool.query(
                "SELECT count(*) AS n FROM jobs WHERE kind = $1 AND status IN ('queued', 'running')",
                [PostDeployWatchJob.kind]
            ).first!.decode("n", as: Int.self)
            let status = try await self.tasks.task(workItem: self.workItem)?.state.status
            return live == 0 && status != .active
        }
        XCTAssertTrue(finished, "the watch ended")
    }

    /// Hands a deploy over to a watch with these settings against `health`, lets `meanwhile` act
    /// on the watched task, then runs the watch job to its end.
    private func watch(
        _ health: HealthStandIn, window: Duration, timeout: Duration = .seconds(1), enabled: Bool = true,
        alerts: Alerts = .off, meanwhile: @escaping @Sendable () async throws -> Void = {}
    ) async throws {
        try await StandInServer.with(health.router) { url in
            let repo = repo(
                health: url, .init(window: window, interval: .milliseconds(100), timeout: timeout, failures: 3))
            let started = try await handOver(repo)
            XCTAssertEqual(started.visit, 6)
            try await meanwhile()
            try await runWatch(PostDeployWatch(repos: [repo], enabled: enabled, pool: database.pool, alerts: alerts))
        }
    }

    /// The `/queue` `post_deploy` block now, as JSON.
    static func block(_ pool: ConnectionPool) async throws -> [String: Any] {
        let body = try await PostDeployBlock(enabled: true).read(from: pool, leader: nil)
        let data = try JSONEncoder.snakeCase.encode(body)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func storedWatch() async throws -> DeployWatch {
        let found = try await DeployWatchStore(pool: database.pool).watch(workItem: workItem, visit: 6)
        return try XCTUnwrap(found?.watch)
    }

    private func task() async throws -> TaskRecord {
        let task = try await tasks.task(workItem: workItem)
        return try XCTUnwrap(task)
    }

    func testAHealthyDeployPassesAfterTheWindowAndTheWatchKeepsTheTaskAlive() async throws {
        let (tasks, pool) = (tasks!, database.pool)
        try await watch(HealthStandIn(), window: .milliseconds(1500)) {
            // Healthy-watching is not stranded: the watch job is the task's live job.
            let stranded = try await tasks.holdStranded()
            XCTAssertEqual(stranded, [])
            let watching = try await Self.block(pool)["watching"] as? [[String: Any]]
            XCTAssertEqual(watching?.map { $0["task"] as? String }, ["ORCH-9"])
            XCTAssertEqual(watching?.first?["probes"] as? Int, 0)
        }
        let task = try await task()
        XCTAssertEqual(task.state.stage, .done)
        XCTAssertEqual(task.state.status, .done)
        let watch = try await storedWatch()
        XCTAssertEqual(watch.result, .healthy)
        XCTAssertGreaterThanOrEqual(watch.probes, 3, "probed through the window")
        XCTAssertEqual(watch.failedProbes, 0)
        XCTAssertEqual(watch.lastStatus, 200)
        let last = try await tasks.history(workItem: workItem).last
        XCTAssertEqual(last?.event, "stage_passed")
        XCTAssertTrue(last?.reason?.contains("healthy for 2s after deploying eeeeeeeeeeee") == true, last?.reason ?? "")
        let gate = try await RepositoryGateStore(pool: database.pool).gate(repo: "acme/orch")
        XCTAssertNotEqual(gate?.frozen, true)
        let live = try await database.pool.query(
            "SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')"
        ).first!.decode("n", as: Int.self)
        XCTAssertEqual(live, 0)
    }

    func testFailuresInARowDegradeTheDeployHoldTheTaskFreezeTheRepositoryAndAlert() async throws {
        let health = HealthStandIn(hang: .seconds(2))
        // Two 5xx answers and then no answer within the timeout: three failed probes in a row.
        health.script([200, 503, 500, 0])
        try await watch(
            health, window: .seconds(20), timeout: .milliseconds(300),
            alerts: Alerts(jobs: JobStore(pool: database.pool)))
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(task.state.status, .held)
        let last = try await tasks.history(workItem: workItem).last
        XCTAssertEqual(last?.event, "deploy_degraded")
        let reason = last?.reason ?? ""
        XCTAssertTrue(reason.contains("deploy of eeeeeeeeeeee degraded: 3 probes of"), reason)
        XCTAssertTrue(reason.contains("no answer within 300 ms"), reason)
        let watch = try await storedWatch()
        XCTAssertEqual(watch.result, .degraded)
        XCTAssertEqual(watch.probes, 4)
        XCTAssertEqual(watch.consecutiveFailures, 3)
        XCTAssertNil(watch.lastStatus, "the last probe got no answer")
        let gate = try await RepositoryGateStore(pool: database.pool).gate(repo: "acme/orch")
        XCTAssertEqual(gate?.frozen, true)
        XCTAssertEqual(gate?.frozenWorkItem, workItem)
        let lessons = try await LessonStore(pool: database.pool).list(
            type: "degraded_deploy", status: nil, repo: "acme/orch", workItem: workItem, limit: 5)
        XCTAssertEqual(lessons.count, 1)
        XCTAssertEqual(lessons.first?.stage, "deploy")
        let alerts = try await database.pool.query(
            "SELECT payload::text AS p FROM jobs WHERE kind = $1 AND status = 'queued'", [AlertJob.kind]
        ).rows.map { try $0.decode("p", as: String.self) }
        XCTAssertEqual(alerts.count, 1)
        XCTAssertTrue(alerts.first?.contains("acme/orch is frozen") == true, alerts.first ?? "")
        let block = try await Self.block(database.pool)
        XCTAssertEqual(block["enabled"] as? Bool, true)
        XCTAssertEqual((block["watching"] as? [Any])?.count, 0)
        let recent = try XCTUnwrap((block["recent"] as? [[String: Any]])?.first)
        XCTAssertEqual(recent["task"] as? String, "ORCH-9")
        XCTAssertEqual(recent["result"] as? String, "degraded")
        XCTAssertEqual(recent["reason"] as? String, reason)
        XCTAssertNotNil(recent["finished_at"] as? String)
        // The held task gave its serial-gate slot up; /retry takes one again, so in the frozen
        // repository it waits, and the unfreeze deploys it again in a new visit.
        let retried = try await tasks.apply(.retry, workItem: workItem, actor: "operator")
        XCTAssertEqual(retried?.state.status, .waiting)
        let unfrozen = try await tasks.unfreeze(repo: "acme/orch")
        XCTAssertEqual(unfrozen.started, [workItem])
        let redeploying = try await self.task()
        XCTAssertEqual(redeploying.state.status, .active)
        XCTAssertEqual(redeploying.state.stage, .deploy)
    }

    func testAnIsolatedFailureBelowTheThresholdDoesNotDegrade() async throws {
        let health = HealthStandIn()
        health.script([200, 503, 503, 200])
        try await watch(health, window: .milliseconds(1500))
        let task = try await task()
        XCTAssertEqual(task.state.status, .done)
        let watch = try await storedWatch()
        XCTAssertEqual(watch.result, .healthy)
        XCTAssertEqual(watch.failedProbes, 2)
        XCTAssertEqual(watch.consecutiveFailures, 0)
        let gate = try await RepositoryGateStore(pool: database.pool).gate(repo: "acme/orch")
        XCTAssertNotEqual(gate?.frozen, true)
    }

    func testAWatchWhoseTaskWasCancelledStopsWithoutAVerdict() async throws {
        let (tasks, workItem) = (tasks!, workItem)
        try await watch(HealthStandIn(), window: .seconds(20)) {
            _ = try await tasks.apply(.cancel, workItem: workItem, actor: "operator")
        }
        let watch = try await storedWatch()
        XCTAssertEqual(watch.result, .stopped)
        XCTAssertEqual(watch.probes, 0)
    }

    func testWithTheSwitchOffAWatchEndsHealthyAtOnce() async throws {
        let health = HealthStandIn()
        try await watch(health, window: .seconds(20), enabled: false)
        let task = try await task()
        XCTAssertEqual(task.state.status, .done)
        XCTAssertEqual(health.requests, 0)
    }
}
