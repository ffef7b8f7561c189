import Foundation
import Hummingbird
import NIOCore
import Store
import Synchronization
import TestSupport
import XCTest

@testable import App

/// What if a step of the pipeline fails: every external call (git fetch and push, the agent, the
/// test and deploy commands, Plane, Gitea) made to fail against a real `orchestrator` process. The
/// task always ends `done`, `held` or `failed` with a reason — never active without a live job.
final class PipelineFailureTests: XCTestCase {
    var harness: PipelineHarness!

    override func setUp() async throws {
        harness = try await PipelineHarness(suite: "pipefail")
    }

    override func tearDown() async throws {
        await harness?.shutdown(testFailed: testRun?.hasSucceeded == false)
    }

    /// One way a step fails, and where the task must end.
    struct FailureCase: Sendable {
        let name: String
        var repository: @Sendable (_ remote: URL) -> PipelineHarness.Repository = { .init(cloneURL: $0.path) }
        var agent: [String] = []
        var agentTimeout = "60s"
        var environment: [String: String] = [:]
        /// Breaks something in the remote before the task starts.
        var prepare: @Sendable (_ remote: URL) throws -> Void = { _ in }
        /// With a Gitea stand-in over the remote, answering calls starting `METHOD path` (below
        /// the repository) with these statuses; nil: no Gitea (plain git merge).
        var gitea: [(prefix: String, status: Int)]?
        let status: TaskStatus
        let stage: TaskStage
        /// Something the reason of the task's last event must say.
        let reason: String
    }

    /// Installs a `pre-receive` hook in the bare remote that refuses pushes to refs matching `pattern`.
    static func refusePushes(to pattern: String) -> @Sendable (URL) throws -> Void {
        { remote in
            let hook = remote.appendingPathComponent("hooks/pre-receive")
            try """
            #!/bin/sh
            while read old new ref; do
              case "$ref" in \(pattern)) echo "refused by the test's hook"; exit 1;; esac
            done
            exit 0
            """.write(to: hook, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook.path)
        }
    }

    static let cases: [FailureCase] = [
        FailureCase(
            name: "git fetch: the remote is unreachable",
            repository: { _ in .init(cloneURL: "/nonexistent/remote.git") },
            status: .held, stage: .analysis, reason: "the analysis job gave up after its retries"),
        FailureCase(
            name: "git push: the remote refuses the task branch", prepare: refusePushes(to: "refs/heads/orch/*"),
            status: .held, stage: .analysis, reason: "refused by the test's hook"),
        FailureCase(
            name: "git push: the remote refuses the merge", prepare: refusePushes(to: "refs/heads/main"),
            status: .held, stage: .merge, reason: "the merge job gave up after its retries"),
        FailureCase(
            name: "the agent exits non-zero", agent: ["--exit", "3"],
            status: .failed, stage: .analysis, reason: "the agent exited 3"),
        FailureCase(
            name: "the agent times out", agent: ["--sleep", "5"], agentTimeout: "1s",
            status: .failed, stage: .analysis, reason: "the agent timed out"),
        FailureCase(
            name: "test_command fails", repository: { .init(cloneURL: $0.path, testCommand: ["false"]) },
            status: .failed, stage: .development, reason: "test_command false failed with exit 1"),
        FailureCase(
            name: "deploy_command fails", repository: { .init(cloneURL: $0.path, deployCommand: ["false"]) },
            status: .failed, stage: .deploy, reason: "deploy_command exited 1"),
        FailureCase(
            name: "Gitea: opening the pull request fails", gitea: [("POST /pulls", 502)],
            status: .held, stage: .development, reason: "the development job gave up after its retries"),
        FailureCase(
            name: "Gitea: reading the pull request fails", gitea: [("GET /pulls/1", 500)],
            status: .held, stage: .merge, reason: "the merge job gave up after its retries"),
        FailureCase(
            name: "Gitea: the pull request is gone", gitea: [("GET /pulls/1", 404)],
            status: .held, stage: .merge, reason: "PR #1 not found"),
        FailureCase(
            name: "Gitea: the merge call fails", gitea: [("POST /pulls/1/merge", 500)],
            status: .held, stage: .merge, reason: "the merge job gave up after its retries"),
        FailureCase(
            name: "Gitea: the combined status cannot be read", gitea: [("GET /commits/", 500)],
            status: .held, stage: .merge, reason: "the merge job gave up after its retries"),
        FailureCase(
            name: "Gitea: nothing fails", gitea: [],
            status: .done, stage: .done, reason: ""),
        FailureCase(
            name: "the Plane API is unreachable (notifications only)",
            environment: [
                "ORCH_PLANE_API_URL": "http://127.0.0.1:9", "ORCH_PLANE_API_KEY": "k", "ORCH_PLANE_WORKSPACE": "w",
            ],
            status: .done, stage: .done, reason: ""),
    ]

    func testEveryFailingStepEndsTheTaskDoneHeldOrFailedWithAReason() async throws {
        for (index, failure) in Self.cases.enumerated() {
            let remote = try harness.makeRemote("case-\(index)")
            try failure.prepare(remote)
            if let outages = failure.gitea {
                let gitea = GiteaStandIn.over(remote: remote, root: harness.root)
                gitea.outages.value = outages
                try await StandInServer.with(gitea.router) { api in
                    try await run(
                        failure, index: index, remote: remote,
                        environment: [
                            "ORCH_GITEA_API_URL": api.absoluteString, "ORCH_GITEA_TOKEN": "t",
                            "ORCH_GITEA_WEBHOOK_SECRET": "s",
                        ])
                }
            } else {
                try await run(failure, index: index, remote: remote, environment: [:])
            }
        }
    }

    /// Runs one case on a replica of its own; the task must end as the case says.
    private func run(_ failure: FailureCase, index: Int, remote: URL, environment: [String: String]) async throws {
        let config = try harness.writeConfig(
            failure.repository(remote), agent: failure.agent, agentTimeout: failure.agentTimeout,
            name: "case-\(index).yaml")
        let base = try await harness.launch(
            index, config: config, environment: failure.environment.merging(environment) { $1 })
        let workItem = "ORCH-\(100 + index)"
        try await harness.sendIssue(to: base, sequence: 100 + index)
        let task = try await harness.waitUntilAtRest(workItem)
        XCTAssertEqual(task?.state.status, failure.status, failure.name)
        XCTAssertEqual(task?.state.stage, failure.stage, failure.name)
        let reason = try await harness.lastReason(workItem)
        XCTAssertTrue(failure.reason.isEmpty || reason.contains(failure.reason), "\(failure.name): \(reason)")
        if failure.status != .done {
            XCTAssertFalse(reason.isEmpty, failure.name)
            // Held and failed tasks start again on /retry.
            let (status, _) = try await harness.admin("POST", base, "tasks/\(workItem)/retry")
            XCTAssertEqual(status, 200, failure.name)
            let retried = try await harness.task(workItem)
            XCTAssertEqual(retried?.state.status, .active, failure.name)
            _ = try await harness.admin("POST", base, "tasks/\(workItem)/cancel")
        }
        // Whatever failed after the agent ran, no stage ran its agent more than its gate tries.
        let runs = try await AgentRunStore(pool: harness.database.pool).runs(workItem: workItem)
        let perStage = Dictionary(grouping: runs, by: { $0.stage ?? "" }).mapValues(\.count)
        XCTAssertTrue(perStage.values.allSatisfy { $0 <= 3 }, "\(failure.name): \(perStage)")
        await harness.stopServers(testFailed: testRun?.hasSucceeded == false)
    }

    /// A failed run's files never reach the branch; the operator finds them as a patch beside its log.
    func testAFailedRunsChangesAreKeptAsAPatchAndNotPushed() async throws {
        let remote = try harness.makeRemote()
        let config = try harness.writeConfig(.init(cloneURL: remote.path), agent: ["--exit", "3"])
        let base = try await harness.launch(0, config: config)
        try await harness.sendIssue(to: base)
        let task = try await harness.waitUntilAtRest("ORCH-98")
        XCTAssertEqual(task?.state.status, .failed)
        let branches = try runGit(["ls-remote", remote.path, "refs/heads/orch/*"], in: harness.root)
        XCTAssertEqual(branches, "", "nothing of a failed run is pushed")
        let runs = try await AgentRunStore(pool: harness.database.pool).runs(workItem: "ORCH-98")
        XCTAssertEqual(runs.count, 3, "one run per gate try")
        for run in runs {
            let patch = try String(contentsOfFile: try XCTUnwrap(run.logPath) + ".patch", encoding: .utf8)
            XCTAssertTrue(patch.contains("docs/tasks/ORCH-98/spec.md"), patch)
        }
        let reason = try await harness.lastReason("ORCH-98")
        XCTAssertTrue(reason.contains("its changes were not committed: they are kept in "), reason)
    }

    /// Tasks A and B both branch from main; A merges and deploys, then B. B's deploy must ship
    /// what was merged (A and B), not B's branch (which lacks A and would roll it back).
    func testDeployShipsTheMergeCommitAndTheMergedBranchIsDeleted() async throws {
        let remote = try harness.makeRemote()
        let deployed = harness.root.appendingPathComponent("deployed")
        try FileManager.default.createDirectory(at: deployed, withIntermediateDirectories: true)
        let config = try harness.writeConfig(
            .init(
                cloneURL: remote.path, deployCommand: ["sh", "-c", "ls src > \(deployed.path)/$(basename $PWD)"]))
        let base = try await harness.launch(0, config: config)
        try await harness.sendIssue(to: base, sequence: 201)
        try await harness.sendIssue(to: base, sequence: 202)
        for workItem in ["ORCH-201", "ORCH-202"] {
            let task = try await harness.waitUntilAtRest(workItem)
            XCTAssertEqual(task?.state.status, .done, workItem)
        }
        let taskA = try await harness.task("ORCH-201")
        let taskB = try await harness.task("ORCH-202")
        let a = try XCTUnwrap(taskA?.mergeSHA)
        let b = try XCTUnwrap(taskB?.mergeSHA)
        let aFirst = (try? runGit(["merge-base", "--is-ancestor", a, b], in: remote)) != nil
        let later = aFirst ? "ORCH-202" : "ORCH-201"
        let shipped = try String(contentsOf: deployed.appendingPathComponent(later), encoding: .utf8)
        XCTAssertEqual(shipped, "orch_201.txt\norch_202.txt\n", "the later deploy ships both merges")
        let branches = try runGit(["ls-remote", remote.path, "refs/heads/orch/*"], in: harness.root)
        XCTAssertEqual(branches, "", "merged task branches are deleted")
    }

    /// A merge conflict holds the task with git's account; once main is fixed, /retry merges it.
    func testALocalMergeConflictHoldsTheTaskAndRetryMergesOnceFixed() async throws {
        let remote = try harness.makeRemote()
        let config = try harness.writeConfig(.init(cloneURL: remote.path), agent: ["--sleep", "1"])
        let base = try await harness.launch(0, config: config)
        try await harness.sendIssue(to: base, sequence: 301)
        // Once the task branch exists, main gets a conflicting version of the file the task adds.
        let branched = try await waitUntil(timeout: .seconds(60)) {
            try await self.harness.task("ORCH-301").map { $0.state.stage != .analysis } ?? false
        }
        XCTAssertTrue(branched)
        let seed = harness.root.appendingPathComponent("seed-clone")
        try runGit(["clone", "--quiet", remote.path, seed.path], in: harness.root)
        try FileManager.default.createDirectory(
            at: seed.appendingPathComponent("src"), withIntermediateDirectories: true)
        try "someone else's version\n".write(
            to: seed.appendingPathComponent("src/orch_301.txt"), atomically: true, encoding: .utf8)
        try runGit(["add", "-A"], in: seed)
        try runGit(["commit", "--quiet", "-m", "conflicting"], in: seed)
        try runGit(["push", "--quiet", "origin", "HEAD:main"], in: seed)

        let held = try await harness.waitUntilAtRest("ORCH-301")
        XCTAssertEqual(held?.state.status, .held)
        XCTAssertEqual(held?.state.stage, .merge)
        let reason = try await harness.lastReason("ORCH-301")
        XCTAssertTrue(reason.contains("does not merge cleanly into main; conflicts in src/orch_301.txt"), reason)
        let lessons = try await LessonStore(pool: harness.database.pool).list(
            type: "merge_hold", status: nil, repo: nil, workItem: "ORCH-301", limit: 5)
        XCTAssertEqual(lessons.count, 1)

        try runGit(["rm", "--quiet", "src/orch_301.txt"], in: seed)
        try runGit(["commit", "--quiet", "-m", "make way"], in: seed)
        try runGit(["push", "--quiet", "origin", "HEAD:main"], in: seed)
        let (status, _) = try await harness.admin("POST", base, "tasks/ORCH-301/retry")
        XCTAssertEqual(status, 200)
        let done = try await harness.waitUntilAtRest("ORCH-301")
        XCTAssertEqual(done?.state.status, .done)
        let merged = try runGit(["show", "main:src/orch_301.txt"], in: remote)
        XCTAssertTrue(merged.hasPrefix("implementation of ORCH-301"), merged)
    }

    /// Gitea answers 502 when development's pull request is opened, after the agent's work was
    /// pushed: the retried job resumes from the pushed run and opens the PR without paying for
    /// the agent again.
    func testARetryAfterTheAgentsWorkWasPushedDoesNotRunTheAgentAgain() async throws {
        let remote = try harness.makeRemote()
        let opened = Mutex(0)
        let router = Router()
        router.post("/api/v1/repos/acme/orch/pulls") { _, _ -> Response in
            let attempt = opened.withLock { count -> Int in
                count += 1
                return count
            }
            let (status, body): (HTTPResponse.Status, String) =
                attempt == 1
                ? (.badGateway, #"{"message":"bad gateway"}"#) : (.created, #"{"number":7,"head":{"sha":""}}"#)
            return Response(status: status, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        try await StandInServer.with(router) { gitea in
            let config = try harness.writeConfig(.init(cloneURL: remote.path))
            let base = try await harness.launch(
                0, config: config,
                environment: [
                    "ORCH_GITEA_API_URL": gitea.absoluteString, "ORCH_GITEA_TOKEN": "t",
                    "ORCH_GITEA_WEBHOOK_SECRET": "s",
                ])
            // Bug track without auto: analysis, then development on approval.
            try await harness.sendIssue(to: base, labels: ["bug"])
            var task = try await harness.waitUntilAtRest("ORCH-98")
            XCTAssertEqual(task?.state.status, .awaitingApproval)
            let (approved, _) = try await harness.admin("POST", base, "tasks/ORCH-98/approve")
            XCTAssertEqual(approved, 200)
            task = try await harness.waitUntilAtRest("ORCH-98")
            XCTAssertEqual(task?.state.stage, .review)
            XCTAssertEqual(task?.state.status, .awaitingApproval)
            XCTAssertEqual(task?.prNumber, 7)
        }
        XCTAssertEqual(opened.withLock { $0 }, 2, "the PR was opened on the second try")
        let runs = try await AgentRunStore(pool: harness.database.pool).runs(workItem: "ORCH-98").filter {
            $0.stage == "development"
        }
        XCTAssertEqual(runs.count, 1, "the agent ran once")
        XCTAssertEqual(runs.first?.outcome, "applied")
        let head = try runGit(["rev-parse", "orch/ORCH-98"], in: remote).trimmingCharacters(in: .whitespacesAndNewlines)
        let task = try await harness.task("ORCH-98")
        XCTAssertEqual(task?.headSHA, head)
        let attempts = try await harness.database.pool.query(
            """
            SELECT attempt FROM jobs WHERE kind = 'run_stage' AND payload->>'stage' = 'development'
            """
        ).first?.decode("attempt", as: Int.self)
        XCTAssertEqual(attempts, 2)
    }

    // MARK: A replica killed or paused after its agent's work was pushed

    /// Two replicas; development's gate (`test_command`) takes 5 s, so a replica can be stopped
    /// after its agent's work was pushed. Returns the index of the replica running that gate.
    private func startTwoAndWaitForAPushedDevelopmentRun() async throws -> (victim: Int, runID: Int64) {
        let remote = try harness.makeRemote()
        let config = try harness.writeConfig(
            .init(cloneURL: remote.path, testCommand: ["sh", "-c", "sleep 5; ls tests"]))
        let base = try await harness.launch(0, config: config)
        try await harness.launch(1, config: config)
        try await harness.sendIssue(to: base)
        var pushed: (replica: String, id: Int64)?
        let found = try await waitUntil(timeout: .seconds(90)) {
            pushed = try await self.harness.database.pool.query(
                """
                SELECT id, replica_id FROM agent_runs WHERE stage = 'development' AND pushed_sha IS NOT NULL
                """
            ).first.map { (try $0.decode("replica_id", as: String.self), try $0.decode("id", as: Int64.self)) }
            return pushed != nil
        }
        XCTAssertTrue(found, "development's work was pushed")
        let run = try XCTUnwrap(pushed)
        let victim = try XCTUnwrap(harness.servers.firstIndex { run.replica.hasPrefix($0.name + "-") })
        return (victim, run.id)
    }

    /// The run and its single pass through development: the agent ran once, its run's outcome is
    /// the one applied, and every stage passed exactly once.
    private func assertDevelopmentRanOnce(runID: Int64) async throws {
        let done = try await harness.waitUntilAtRest("ORCH-98", timeout: .seconds(120))
        XCTAssertEqual(done?.state.status, .done)
        let runs = try await AgentRunStore(pool: harness.database.pool).runs(workItem: "ORCH-98")
        let development = runs.filter { $0.stage == "development" }
        XCTAssertEqual(development.map(\.id), [runID], "the agent ran once: the other replica resumed its pushed work")
        XCTAssertEqual(development.first?.outcome, "applied")
        let passed = try await TaskStore(pool: harness.database.pool).history(workItem: "ORCH-98").filter {
            $0.event == "stage_passed"
        }
        XCTAssertEqual(
            passed.map(\.fromStage), ["analysis", "architecture", "development", "review", "merge", "deploy"])
    }

    /// SIGKILL after the push: the job is rescued and the other replica judges the pushed work.
    func testAReplicaKilledAfterThePushLeavesItsWorkToTheOtherWithoutARerun() async throws {
        let (victim, runID) = try await startTwoAndWaitForAPushedDevelopmentRun()
        harness.servers[victim].signal(SIGKILL)
        try await assertDevelopmentRanOnce(runID: runID)
    }

    /// SIGSTOP past the heartbeat TTL after the push, then SIGCONT: the other replica judges the
    /// pushed work and moves on; the resumed replica's late outcome about the same run applies
    /// nothing and does not mark the applied run superseded.
    func testAReplicaPausedAfterThePushAppliesNothingWhenItResumes() async throws {
        let (victim, runID) = try await startTwoAndWaitForAPushedDevelopmentRun()
        harness.servers[victim].signal(SIGSTOP)
        let stage = try await waitUntil(timeout: .seconds(60)) {
            try await self.harness.task("ORCH-98").map { $0.state.stage != .development } ?? false
        }
        XCTAssertTrue(stage, "the other replica passed development while this one was paused")
        harness.servers[victim].signal(SIGCONT)
        // The resumed replica learns from its first heartbeat that it was marked stopped and stops
        // the job (or, had the gate finished first, the fence refuses its outcome): nothing applied.
        let signs = ["job abandoned", "job stopped: its lease", "stage outcome not applied", "job superseded"]
        let refused = await waitUntil(timeout: .seconds(30)) {
            let output = self.harness.servers[victim].output
            return signs.contains { output.contains($0) }
        }
        XCTAssertTrue(refused, "the resumed replica applied nothing")
        try await assertDevelopmentRanOnce(runID: runID)
    }
}
