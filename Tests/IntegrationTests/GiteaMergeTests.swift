import Foundation
import Logging
import Store
import Synchronization
import TestSupport
import XCTest

@testable import App
@testable import Workers

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The merge stage through Gitea, read answer by answer: the stage runner's merge job runs against
/// the real database and a Gitea stand-in that answers as Gitea does (routers/api/v1/repo/pull.go
/// `MergePullRequest`), and every case ends in a merge, a postponement that costs no attempt, or a
/// hold with the reason, never in a failed job with the task left active. Two cases run real
/// `orchestrator serve` processes end to end (the second, two replicas sharing a merge lease).
final class GiteaMergeTests: DatabaseTestCase {
    var tasks: TaskStore!
    var jobs: JobStore!
    var root: URL!
    var servers: [OrchestratorProcess] = []
    let replica = "replica-merge"
    let workItem = "ORCH-7"
    let branch = "orch/ORCH-7"
    static let shaA = String(repeating: "a", count: 40)
    static let shaB = String(repeating: "b", count: 40)
    static let merged = String(repeating: "m", count: 40)

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        jobs = JobStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(
            id: replica, name: replica, host: "test", pid: 1, role: "worker")
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-giteamerge-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(servers, testFailed: testRun?.hasSucceeded == false, tail: 6000)
        servers = []
        try await super.tearDown()
        try? FileManager.default.removeItem(at: root)
    }

    // MARK: - Harness

    private func repo(
        ci: RepositorySettings.CIRequirement = .required, ciTimeout: Duration = .seconds(3600)
    ) -> RepositorySettings {
        RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: root.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil, ci: ci, ciTimeout: ciTimeout)
    }

    private func runner(_ api: URL, repo: RepositorySettings) -> StageRunner {
        StageRunner(
            settings: .init(
                repos: [repo], agents: [:], gitea: GiteaSettings(baseURL: api, token: "gitea-token"),
                ciPollInterval: .seconds(30)),
            pool: database.pool,
            launcher: AgentLauncher(
                settings: .init(
                    logDirectory: root.appendingPathComponent("logs").path, replicaID: replica, host: "test"),
                pool: database.pool, logger: Logger(label: "test")),
            workspace: Workspace(root: root.appendingPathComponent("work").path), alerts: Alerts(jobs: jobs))
    }

    /// Walks a new task through its agent stages (each job claimed and passed, as the runner
    /// would) to merge, with pull request `number` at `head`.
    private func taskAtMerge(number: Int, head: String) async throws {
        _ = try await tasks.upsert(
            workItem: workItem, repo: "acme/orch", title: "t", description: "", labels: ["auto"], track: .full,
            auto: true,
            planeIssueID: nil, planeProjectID: nil, planeState: nil)
        for _ in 0..<4 {
            let job = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(60)).first
            let lease = try XCTUnwrap(job?.lease)
            let task = try await tasks.task(workItem: workItem)
            _ = try await tasks.apply(
                .stagePassed, workItem: workItem, actor: "test", reason: "passed", about: task?.currentVisit,
                fence: lease)
        }
        try await database.pool.withTransaction { connection in
            try await TaskStore.recordOwnPullRequest(
                workItem: self.workItem, number: number, headSHA: head, on: connection)
        }
        let task = try await tasks.task(workItem: workItem)
        XCTAssertEqual(task?.state.stage, .merge)
    }

    /// A commit status received for the task's repository (as the status webhook records it).
    private func status(_ sha: String, _ state: String, context: String = "ci/build", id: Int64 = 1) async throws {
        _ = try await tasks.recordCommitStatus(
            repo: "acme/orch", sha: sha, context: context, state: CIState(rawValue: state)!, statusID: id,
            targetURL: nil,
            description: nil)
    }

    enum Ran {
        case finished
        case postponed(JobPostponed)
    }

    /// Claims the due merge job and runs it as the queue worker would: a postponement is recorded
    /// (by the database clock) without spending an attempt; anything else the job throws fails the test.
    private func runMerge(_ runner: StageRunner) async throws -> Ran {
        let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(60)).first
        let job = try XCTUnwrap(claimed, "a merge job is due")
        let lease = try XCTUnwrap(job.lease)
        XCTAssertEqual(try job.payload.decode(StageJobPayload.self).stage, "merge")
        let context = JobContext(job: job, lease: lease, baseLogger: Logger(label: "test"))
        do {
            try await runner.run(context)
        } catch let postponed as JobPostponed {
            let recorded = try await postponed.record(lease, in: jobs)
            XCTAssertTrue(recorded)
            return .postponed(postponed)
        }
        if !context.completion.isCompleted { _ = try await jobs.complete(lease) }
        return .finished
    }

    private func task() async throws -> TaskRecord {
        let task = try await tasks.task(workItem: workItem)
        return try XCTUnwrap(task)
    }

    private func lastReason() async throws -> String {
        try await tasks.history(workItem: workItem).last?.reason ?? ""
    }

    /// A stand-in whose branch head is `heads`' first value for the first read and the last one after.
    private func gitea(heads: [String], ciState: String = "pending") -> GiteaStandIn {
        let sequence = Mutex(heads)
        return GiteaStandIn(
            repo: "acme/orch", ciState: ciState,
            headOf: { _ in
                sequence.withLock { heads in heads.count > 1 ? heads.removeFirst() : heads[0] }
            }, performMerge: { _, _ in Self.merged })
    }

    /// The task's pull request in a stand-in (its branch head `heads`, as `gitea(heads:)`), the
    /// task at merge with it at A, and A's CI green when `green`. The merge commit's CI is green
    /// (as its status webhook records it), so a merge passes its verification at once.
    private func mergeReady(
        heads: [String] = [shaA], ciState: String = "pending", green: Bool = true
    ) async throws -> (GiteaStandIn, Int) {
        let gitea = gitea(heads: heads, ciState: ciState)
        let number = gitea.add(headRef: branch, headRepo: "acme/orch", headSHA: Self.shaA)
        try await taskAtMerge(number: number, head: Self.shaA)
        if green { try await status(Self.shaA, "success") }
        try await status(Self.merged, "success", context: "ci/main")
        return (gitea, number)
    }

    /// Runs the merge job once against `gitea`; it must end there (merged or held), not wait.
    private func mergeOnce(_ gitea: GiteaStandIn, repo: RepositorySettings? = nil) async throws {
        try await StandInServer.with(gitea.router) { api in
            guard case .finished = try await self.runMerge(self.runner(api, repo: repo ?? self.repo())) else {
                return XCTFail("the merge job waits")
            }
        }
    }

    // MARK: - Answers of the merge

    func testAHeadThatMovedUnderTheMergeIsRecordedItsCIAwaitedThenMergedWithTheNewHead() async throws {
        // The PR read shows A (green); by the merge someone pushed B: Gitea answers 409 "head out of date".
        let (gitea, number) = try await mergeReady(heads: [Self.shaA, Self.shaB])
        try await StandInServer.with(gitea.router) { api in
            let runner = self.runner(api, repo: self.repo())
            guard case .postponed(let postponed) = try await self.runMerge(runner) else {
                return XCTFail("waits for B's CI")
            }
            XCTAssertEqual(postponed.due, .after(.seconds(30)))
            var task = try await self.task()
            XCTAssertEqual(task.headSHA, Self.shaB, "the PR's new head is recorded")
            XCTAssertEqual(task.state.status, .active)
            let job = try await self.jobs.jobs(workItem: self.workItem).first
            XCTAssertEqual(job?.status, .queued, "postponed, not failed")
            XCTAssertEqual(job.map { $0.maxAttempts - $0.attempt }, 5, "the postponement spent no attempt")
            XCTAssertTrue(
                job?.lastError?.hasPrefix("waiting for CI on bbbbbbbbbbbb") == true, "\(job?.lastError ?? "")")

            // B's CI turns green; the status webhook wakes the merge, which merges B.
            try await self.status(Self.shaB, "success")
            try await self.tasks.wakeMerge(workItem: self.workItem)
            guard case .finished = try await self.runMerge(runner) else { return XCTFail("merged") }
            task = try await self.task()
            XCTAssertEqual(task.state.stage, .deploy)
            XCTAssertEqual(task.mergeSHA, Self.merged)
        }
        XCTAssertEqual(gitea.mergeCalls.map(\.headCommitID), [Self.shaA, Self.shaB])
        XCTAssertEqual(gitea.mergeCalls.map(\.deleteBranchAfterMerge), [true, true], "Gitea deletes the task branch")
        let reason = try await lastReason()
        XCTAssertEqual(reason, "PR #\(number) merged as mmmmmmmmmmmm")
    }

    func testAConflictHoldsTheTaskWithGiteasMessage() async throws {
        // Gitea sends its conflict errors as the error struct itself (no `message`).
        let answers: [(String, String)] = [
            (
                #"{"Style":"merge","StdOut":"","StdErr":"CONFLICT (content): Merge conflict in README.md","Err":{}}"#,
                "cannot be merged: merge conflict: CONFLICT (content): Merge conflict in README.md"
            ),
            (
                #"{"Style":"merge","StdOut":"","StdErr":"fatal: refusing to merge unrelated histories","Err":{}}"#,
                "cannot be merged: merge conflict: fatal: refusing to merge unrelated histories"
            ),
            (
                #"{"Style":"rebase","CommitSHA":"cccccccccccccccc","StdOut":"","StdErr":"","Err":{}}"#,
                "cannot be merged: rebase conflict at cccccccccccc"
            ),
            (
                #"{"message":"PushRejected with remote message: protected","url":"x"}"#,
                "cannot be merged: PushRejected with remote message: protected"
            ),
        ]
        for (index, (body, expected)) in answers.enumerated() {
            if index > 0 { try await resetDatabase() }
            let (gitea, number) = try await mergeReady()
            gitea.scriptMergeAnswer(409, body)
            try await mergeOnce(gitea)
            let task = try await task()
            XCTAssertEqual(task.state.status, .held, body)
            let reason = try await lastReason()
            XCTAssertEqual(reason, "PR #\(number) \(expected)")
            XCTAssertEqual(gitea.mergeCalls.count, 1, "a conflict is not retried")
        }
    }

    /// A fresh database between the cases of one test.
    private func resetDatabase() async throws {
        try await tearDown()
        try await setUp()
    }

    func testAMergePushOutOfDateIsTriedAgainShortlyAndBounded() async throws {
        let (gitea, _) = try await mergeReady()
        gitea.scriptMergeAnswer(409, #"{"message":"merge push out of date","url":"x"}"#)
        try await mergeOnce(gitea)
        var task = try await task()
        XCTAssertEqual(task.state.stage, .deploy, "merged on the second try")
        XCTAssertEqual(gitea.mergeCalls.count, 2)

        // Gitea keeps answering it: the tries are bounded and the task is held with the answer.
        try await resetDatabase()
        let (stuck, number) = try await mergeReady()
        for _ in 0..<StageRunner.mergeTries {
            stuck.scriptMergeAnswer(409, #"{"message":"merge push out of date","url":"x"}"#)
        }
        try await mergeOnce(stuck)
        task = try await self.task()
        XCTAssertEqual(task.state.status, .held)
        let reason = try await lastReason()
        XCTAssertEqual(reason, "Gitea did not merge PR #\(number) after 4 tries; last answer: merge push out of date")
        XCTAssertEqual(stuck.mergeCalls.count, StageRunner.mergeTries)
    }

    func testAPullRequestClosedByHandOrUnknownToGiteaHoldsTheTask() async throws {
        let (gitea, number) = try await mergeReady()
        gitea.close(number)
        try await mergeOnce(gitea)
        var task = try await task()
        XCTAssertEqual(task.state.status, .held)
        var reason = try await lastReason()
        XCTAssertEqual(reason, "PR #\(number) was closed without merging")
        XCTAssertTrue(gitea.mergeCalls.isEmpty)

        // A pull request Gitea does not know (deleted, or the wrong number): 404.
        try await resetDatabase()
        try await taskAtMerge(number: 9, head: Self.shaA)
        try await mergeOnce(self.gitea(heads: [Self.shaA]))
        task = try await self.task()
        XCTAssertEqual(task.state.status, .held)
        reason = try await lastReason()
        XCTAssertEqual(reason, "PR #9 not found in acme/orch")
    }

    func testARetriedMergeFindsThePullRequestMergedAndPassesWithItsMergeCommit() async throws {
        let (gitea, number) = try await mergeReady(green: false)
        try await StandInServer.with(gitea.router) { api in
            // An earlier attempt merged, then its replica died before recording it.
            let first = try await GiteaClient(settings: GiteaSettings(baseURL: api, token: "t")).merge(
                repo: "acme/orch", number: number, headSHA: Self.shaA, message: "Merge")
            XCTAssertEqual(first, .merged)
        }
        try await mergeOnce(gitea)
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(task.mergeSHA, Self.merged)
        XCTAssertEqual(gitea.mergeCalls.count, 1, "not merged twice")
    }

    func testAMergedPullRequestWithoutAMergeCommitHoldsTheTask() async throws {
        let gitea = GiteaStandIn(repo: "acme/orch", headOf: { _ in Self.shaA }, performMerge: { _, _ in "" })
        let number = gitea.add(headRef: branch, headRepo: "acme/orch", headSHA: Self.shaA)
        try await taskAtMerge(number: number, head: Self.shaA)
        try await status(Self.shaA, "success")
        try await mergeOnce(gitea)
        let task = try await task()
        XCTAssertEqual(task.state.status, .held)
        let reason = try await lastReason()
        XCTAssertEqual(reason, "PR #\(number) is merged but Gitea shows no merge commit (deploy needs it)")
    }

    // MARK: - Bounded CI waits

    func testCINeverReportedPastTheCITimeoutHoldsTheTaskWithAnAlert() async throws {
        let (gitea, _) = try await mergeReady(ciState: "", green: false)
        try await StandInServer.with(gitea.router) { api in
            let runner = self.runner(api, repo: self.repo(ciTimeout: .seconds(1)))
            var postponements = 0
            let held = try await waitUntil(timeout: .seconds(30)) {
                if case .postponed(let postponed) = try await self.runMerge(runner) {
                    postponements += 1
                    // Never later than the timeout: the next run is the one that holds.
                    guard case .after(let delay) = postponed.due else { XCTFail("relative"); return true }
                    XCTAssertLessThanOrEqual(delay, .seconds(1))
                    try await self.tasks.wakeMerge(workItem: self.workItem)
                }
                return try await self.task().state.status == .held
            }
            XCTAssertTrue(held, "held once ci_timeout passed (\(postponements) postponements)")
        }
        let reason = try await lastReason()
        XCTAssertEqual(reason, "no CI result for aaaaaaaaaaaa after 1s")
        let alert = try await database.pool.query(
            "SELECT payload->>'text' AS text FROM jobs WHERE kind = 'notify.alert'"
        ).first
        let text = try alert?.decode("text", as: String.self) ?? ""
        XCTAssertTrue(text.contains("ORCH-7 held at merge: no CI result for aaaaaaaaaaaa after 1s"), text)
        XCTAssertTrue(gitea.mergeCalls.isEmpty)
    }

    func testARepositoryWithoutCIMergesOnTheDevelopmentGateAlone() async throws {
        let (gitea, _) = try await mergeReady(ciState: "", green: false)
        try await mergeOnce(gitea, repo: repo(ci: .none))
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertFalse(gitea.requestLog.contains { $0.contains("/status") }, "no status asked: \(gitea.requestLog)")
    }

    func testWarningCountsAsSuccessAsGiteaCombinesIt() async throws {
        // Gitea ≥ 1.23 (CommitStatusStates.Combine): warning and skipped count as success, any
        // failure or error fails, anything else is pending. The SQL combination agrees.
        let combined = { (states: [String]) async throws -> String? in
            let sha = UUID().uuidString
            for (index, state) in states.enumerated() {
                try await self.status(sha, state, context: "ci/\(index)", id: Int64(index + 1))
            }
            return try await self.database.pool.query("SELECT combined_ci_state('acme/orch', $1) AS s", [sha]).first?
                .decode("s", as: String?.self)
        }
        let sqlWarning = try await combined(["warning"])
        let sqlMixed = try await combined(["success", "warning"])
        let sqlPending = try await combined(["warning", "pending"])
        let sqlFailed = try await combined(["warning", "error"])
        XCTAssertEqual(sqlWarning, "success")
        XCTAssertEqual(sqlMixed, "success")
        XCTAssertEqual(sqlPending, "pending")
        XCTAssertEqual(sqlFailed, "failure")
        XCTAssertEqual(GiteaClient.combine(["warning", "success"]), .success)
        XCTAssertEqual(GiteaClient.combine(["warning", "pending"]), .pending)
        XCTAssertEqual(GiteaClient.combine([]), .pending)

        // An older Gitea reports a combined `warning` that may hide a running context: combined
        // again from its statuses, a pending one waits and an all-green list merges.
        let (gitea, _) = try await mergeReady(ciState: "warning", green: false)
        gitea.ciStatuses.value = ["warning", "pending"]
        try await StandInServer.with(gitea.router) { api in
            let runner = self.runner(api, repo: self.repo())
            guard case .postponed = try await self.runMerge(runner) else {
                return XCTFail("waits for the pending context")
            }
            gitea.ciStatuses.value = ["warning", "success"]
            try await self.tasks.wakeMerge(workItem: self.workItem)
            guard case .finished = try await self.runMerge(runner) else { return XCTFail("merged") }
        }
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(gitea.mergeCalls.count, 1)
    }

    // MARK: - Heads only move forward

    func testAStalePullRequestReadOrWebhookNeverMovesTheHeadBackwards() async throws {
        try await taskAtMerge(number: 1, head: Self.shaA)
        let early = Date(timeIntervalSince1970: 1_700_000_000)
        let later = early.addingTimeInterval(60)
        // A read at `later` shows B.
        var applied = try await tasks.recordPullRequestRead(
            workItem: workItem, number: 1, headSHA: Self.shaB, updatedAt: later)
        XCTAssertTrue(applied)
        // A late webhook from before it (head A) is ignored…
        let effect = try await tasks.recordPullRequestEvent(
            workItem: workItem, repo: "acme/orch", headRepo: "acme/orch", number: 1, headSHA: Self.shaA, mergeSHA: nil,
            updatedAt: early)
        guard case .ignored = effect else { return XCTFail("a stale webhook must be ignored") }
        // …and so is a read that left Gitea before it, or a read about another pull request.
        applied = try await tasks.recordPullRequestRead(
            workItem: workItem, number: 1, headSHA: Self.shaA, updatedAt: early)
        XCTAssertFalse(applied)
        applied = try await tasks.recordPullRequestRead(
            workItem: workItem, number: 2, headSHA: Self.shaA, updatedAt: later.addingTimeInterval(60))
        XCTAssertFalse(applied)
        var task = try await task()
        XCTAssertEqual(task.headSHA, Self.shaB)

        // A webhook newer than the read moves it on; a read of the same second as the last event
        // applied is current (Gitea stamps whole seconds) and moves it too.
        _ = try await tasks.recordPullRequestEvent(
            workItem: workItem, repo: "acme/orch", headRepo: "acme/orch", number: 1, headSHA: Self.shaA, mergeSHA: nil,
            updatedAt: later.addingTimeInterval(1))
        applied = try await tasks.recordPullRequestRead(
            workItem: workItem, number: 1, headSHA: Self.shaB, updatedAt: later.addingTimeInterval(1))
        XCTAssertTrue(applied)
        task = try await self.task()
        XCTAssertEqual(task.headSHA, Self.shaB)
    }

    // MARK: - Configuration

    func testRepositoryCISettingsAreParsedAndChecked() throws {
        let file = try ConfigFile.parse(
            """
            repos:
              - { project: ORCH, repo: acme/orch, clone_url: /srv/orch, ci_timeout: 90m }
              - { project: WEB, repo: acme/web, clone_url: /srv/web, ci: none, ci_timeout: 30 }
              - { project: API, repo: acme/api, clone_url: /srv/api }
            """)
        XCTAssertEqual(file.repos.map(\.ci), [.required, .none, .required])
        XCTAssertEqual(file.repos.map(\.ciTimeout), [.seconds(5400), .seconds(30), .seconds(7200)])
        for (yaml, expected) in [
            ("ci: maybe", "repos[0].ci: expected required or none, got 'maybe'"),
            ("ci_timeout: soon", "repos[0].ci_timeout: expected a duration such as 2h, got 'soon'"),
            ("ci_timeout: 0", "repos[0].ci_timeout:"),
        ] {
            XCTAssertThrowsError(
                try ConfigFile.parse("repos:\n  - { project: ORCH, repo: a/b, clone_url: x, \(yaml) }\n")
            ) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }
}

extension GiteaMergeTests {
    /// Starts a real `orchestrator serve` (all roles) with `config`, talking to the Gitea stand-in
    /// at `gitea`; returns its base URL once it is ready. Stopped by `tearDown`.
    func serve(
        _ name: String, gitea: URL, config: URL, planeSecret: String, ciPollInterval: String
    ) async throws -> URL {
        let (server, base) = try OrchestratorProcess.serving(
            name: name, databaseURL: database.url, role: "all",
            environment: [
                "ORCH_PLANE_WEBHOOK_SECRET": planeSecret, "ORCH_ADMIN_TOKEN": "admin", "ORCH_CONFIG": config.path,
                "ORCH_WORKDIR": root.appendingPathComponent("work").path, "ORCH_POLL_INTERVAL": "1s",
                "ORCH_GITEA_API_URL": gitea.absoluteString, "ORCH_GITEA_TOKEN": "gitea-token",
                "ORCH_GITEA_WEBHOOK_SECRET": "gitea-secret", "ORCH_CI_POLL_INTERVAL": ciPollInterval,
            ])
        servers.append(server)
        let up = await waitUntilAnswering(base.appendingPathComponent("health/ready"))
        XCTAssertTrue(up, "\(name) ready")
        return base
    }
}

// The same merge in a real `orchestrator serve` process, from the YAML file to the remote: a
// repository with `ci: none` and no CI at all merges on the development gate alone, and Gitea is
// asked to delete the task branch.
extension GiteaMergeTests {
    func testARepositoryWithoutCIMergesThroughGiteaAndTheTaskBranchIsDeleted() async throws {
        let remote = try makeBareRemote(in: root)
        let root = self.root!
        let database = self.database!
        let gitea = GiteaStandIn.over(remote: remote, root: root, ciState: "")
        let agent = packageRoot.appendingPathComponent("examples/agent/agent.py").path
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        let config = root.appendingPathComponent("orchestrator.yaml")
        // The fixture's Plane project, and no test_command: development passes on its commits.
        let project = "plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544"
        try """
        repos: [{ project: ORCH, \(project), repo: acme/orch, clone_url: "\(remote.path)", ci: none, ci_timeout: 5m }]
        agents: { default: { command: ["\(python)", "\(agent)"], timeout: 60s } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let secret = "merge-secret"
        try await StandInServer.with(gitea.router) { api in
            let base = try await serve(
                "giteamerge", gitea: api, config: config, planeSecret: secret, ciPollInterval: "10m")
            let answered = try await sendPlaneIssue(to: base, secret: secret)
            XCTAssertEqual(answered, 202)
            // No status ever arrives and the CI poll is 10 minutes: only `ci: none` lets it merge now.
            let tasks = TaskStore(pool: database.pool)
            let done = try await waitUntil(timeout: .seconds(120)) {
                try await tasks.task(workItem: "ORCH-98")?.state.status == .done
            }
            let state = try await tasks.task(workItem: "ORCH-98")?.state
            XCTAssertTrue(done, "\(String(describing: state)) \(gitea.requestLog.suffix(8))")
        }
        XCTAssertFalse(gitea.requestLog.contains { $0.contains("/status") }, "\(gitea.requestLog)")
        XCTAssertEqual(gitea.mergeCalls.map(\.deleteBranchAfterMerge), [true])
        let branches = try runGit(["branch", "--list", "orch/*"], in: remote)
        XCTAssertEqual(branches, "", "the task branch is deleted after the merge")
        let merged = try await TaskStore(pool: database.pool).task(workItem: "ORCH-98")?.mergeSHA
        XCTAssertEqual(
            merged, try runGit(["rev-parse", "main"], in: remote).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
