import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Workers

/// The stage runner's decisions with the agent, git and Gitea replaced by in-memory stand-ins
/// (`StageRunnerStandIns.swift`): what each agent result, gate verdict and Gitea answer makes of
/// the task, what reaches the task branch and when, and that a retried job does not pay for an
/// agent run twice. The database is real: outcomes are fenced transitions.
final class StageRunnerTests: DatabaseTestCase {
    var tasks: TaskStore!
    var jobs: JobStore!
    var root: URL!
    var git: InMemoryGit!
    var gitea: InMemoryGitea!
    var agent: ScriptedAgent!
    let replica = "replica-runner"
    let workItem = "ORCH-1"
    let docs = "docs/tasks/ORCH-1"

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        jobs = JobStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(
            id: replica, name: replica, host: "test", pid: 1, role: "worker")
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-stagerunner-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("logs"), withIntermediateDirectories: true)
        git = InMemoryGit(root: root.appendingPathComponent("worktrees"))
        gitea = InMemoryGitea(git: git)
        // By default each stage's agent does its stage's work.
        agent = stageAgent(writingSomethingNewEachRun: false)
        _ = try await tasks.upsert(
            workItem: workItem, repo: "acme/orch", title: "A feature", description: "", labels: ["auto"],
            track: .full, auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        try? FileManager.default.removeItem(at: root)
    }

    // MARK: - Harness

    var repo = RepositorySettings(
        project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: "/nonexistent", defaultBranch: "main",
        testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil, ci: .required,
        ciTimeout: .seconds(3600))

    func runner(withGitea: Bool = true, switches: GateSwitches = .init()) -> StageRunner {
        StageRunner(
            settings: .init(
                repos: [repo], agents: ["default": AgentCommand(command: ["agent"], timeout: nil)], switches: switches),
            pool: database.pool, agent: agent, git: git, gitea: withGitea ? gitea : nil)
    }

    /// Claims the next due job, which must be a stage job of `stage`.
    func claim(_ stage: String) async throws -> JobContext {
        let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(60)).first
        let job = try XCTUnwrap(claimed, "a \(stage) job is due")
        XCTAssertEqual(try RunStageJob.payload(of: job).stage, stage)
        return JobContext(job: job, lease: try XCTUnwrap(job.lease), baseLogger: Logger(label: "test"))
    }

    /// Runs a claimed job as the queue worker would, completing it unless its outcome did.
    func run(_ context: JobContext, _ runner: StageRunner) async throws {
        try await runner.run(context)
        if !context.completion.isCompleted { _ = try await jobs.complete(context.lease) }
    }

    /// Claims and runs the next stage job.
    func step(_ stage: String, _ runner: StageRunner) async throws {
        try await run(try await claim(stage), runner)
    }

    func task() async throws -> TaskRecord {
        let task = try await tasks.task(workItem: workItem)
        return try XCTUnwrap(task)
    }

    func lastEvent() async throws -> TaskHistoryEntry {
        let history = try await tasks.history(workItem: workItem)
        return try XCTUnwrap(history.last)
    }

    /// Runs the four agent stages; returns the head the task reached merge with.
    @discardableResult
    func walkToMerge(_ runner: StageRunner) async throws -> String {
        for stage in ["analysis", "architecture", "development", "review"] { try await step(stage, runner) }
        let task = try await task()
        XCTAssertEqual(task.state.stage, .merge)
        return try XCTUnwrap(task.headSHA)
    }

    /// The task is held, and the hold's reason says `words`.
    private func assertHeld(saying words: String, line: UInt = #line) async throws {
        let task = try await task()
        XCTAssertEqual(task.state.status, .held, line: line)
        let reason = try await lastEvent().reason ?? ""
        XCTAssertTrue(reason.contains(words), reason, line: line)
    }

    // MARK: - Agent stages

    func testAgentStagesPushEachRunAndOpenOnePullRequest() async throws {
        let runner = runner()
        try await walkToMerge(runner)

        XCTAssertEqual(agent.stages, ["analysis", "architecture", "development", "review"])
        XCTAssertEqual(agent.requests.withLock { $0.map(\.role) }, ["default", "default", "default", "reviewer"])
        // Each run is pushed only over the head it started from; the first creates the branch.
        let pushes = git.state.withLock { $0.pushes }
        XCTAssertEqual(pushes.first, .absent)
        XCTAssertEqual(pushes.count, 4)
        let remote = git.state.withLock { $0.remote[workItem] }
        let opened = gitea.state.withLock { $0.opened }
        XCTAssertEqual(opened.count, 1, "only development opens the pull request")
        XCTAssertEqual(opened.first?.head, "orch/ORCH-1")
        XCTAssertEqual(opened.first?.base, "main")
        XCTAssertEqual(opened.first?.title, "ORCH-1: A feature")
        let task = try await task()
        XCTAssertEqual(task.prNumber, 1)
        XCTAssertEqual(task.headSHA, remote, "the task's head is the branch the runs pushed")
        XCTAssertEqual(task.state.status, .active)
    }

    func testFailedRunRetriesTheStageAndNothingReachesTheBranch() async throws {
        agent.behaviour.withLock {
            $0 = { _ in .init(files: ["docs/tasks/ORCH-1/spec.md": "half"], exitCode: 1) }
        }
        try await step("analysis", runner())

        XCTAssertTrue(git.state.withLock { $0.pushes.isEmpty && $0.remote.isEmpty })
        let event = try await lastEvent()
        XCTAssertEqual(event.event, "stage_failed")
        XCTAssertTrue(event.reason?.contains("the agent exited 1") == true, event.reason ?? "")
        XCTAssertTrue(event.reason?.contains(".patch") == true, "the run's changes are kept as a patch")
        // The stage runs again with the failure as feedback.
        let retry = try await claim("analysis")
        let payload = try RunStageJob.payload(of: retry.job)
        XCTAssertEqual(payload.attempt, 1)
        XCTAssertTrue(payload.feedback?.contains("the agent exited 1") == true)
    }

    func testGateRefusesAStageWhoseRunWroteNothing() async throws {
        agent.behaviour.withLock { $0 = { _ in .init() } }
        try await step("analysis", runner())

        let event = try await lastEvent()
        XCTAssertEqual(event.event, "stage_failed")
        XCTAssertTrue(event.reason?.contains("spec.md") == true, event.reason ?? "")
        let task = try await task()
        XCTAssertEqual(task.state.stage, .analysis)
    }

    func testTransientFailureIsThrownAndCountedByTheBreaker() async throws {
        agent.behaviour.withLock {
            $0 = { _ in
                .init(exitCode: 1, usage: AgentUsage(isError: true, resultText: "API Error: rate limit reached"))
            }
        }
        let context = try await claim("analysis")
        do {
            try await runner().run(context)
            XCTFail("a transient failure is thrown for the queue to retry")
        } catch is TransientAgentFailure {}

        let breaker = try await CircuitBreakerStore(pool: database.pool).state(name: BreakerSettings.name)
        XCTAssertEqual(breaker.failures, 1)
        let history = try await tasks.history(workItem: workItem)
        XCTAssertFalse(history.contains { $0.event == "stage_failed" }, "not a gate failure")
        XCTAssertTrue(git.state.withLock { $0.pushes.isEmpty })
    }

    func testReviewRequestingChangesSendsTheTaskBackToDevelopment() async throws {
        let runner = runner()
        for stage in ["analysis", "architecture", "development"] { try await step(stage, runner) }
        agent.behaviour.withLock {
            $0 = { _ in .init(files: ["docs/tasks/ORCH-1/review.md": "REQUEST_CHANGES\nname it better\n"]) }
        }
        try await step("review", runner)

        let task = try await task()
        XCTAssertEqual(task.state.stage, .development)
        // The next development run reads the review in its prompt.
        try await step("development", runner)
        let prompt = agent.requests.withLock { $0.last?.prompt } ?? ""
        XCTAssertTrue(prompt.contains("name it better"), prompt)
    }

    func testRetryAfterThePushJudgesThePushedWorkWithoutRunningTheAgentAgain() async throws {
        let runner = runner()
        for stage in ["analysis", "architecture"] { try await step(stage, runner) }
        gitea.state.withLock { $0.failingOpens = 1 }
        let context = try await claim("development")
        do {
            try await runner.run(context)
            XCTFail("Gitea's 503 fails this try")
        } catch let error as GiteaAPIError {
            XCTAssertTrue(error.isRetryable)
        }
        let pushed = git.state.withLock { $0.remote[workItem] }

        // The queue retries the same job.
        try await run(context, runner)

        XCTAssertEqual(agent.stages, ["analysis", "architecture", "development"], "development ran once")
        XCTAssertEqual(git.state.withLock { $0.remote[workItem] }, pushed)
        let task = try await task()
        XCTAssertEqual(task.state.stage, .review)
        XCTAssertEqual(task.prNumber, 1)
    }

    // MARK: - Merge through Gitea

    func testMergeWaitsForGreenCIThenMergesTheRecordedHead() async throws {
        let runner = runner()
        let head = try await walkToMerge(runner)

        let context = try await claim("merge")
        do {
            try await runner.run(context)
            XCTFail("no CI yet: the merge waits")
        } catch is JobPostponed {}
        XCTAssertTrue(gitea.state.withLock { $0.merges.isEmpty })

        gitea.state.withLock { $0.ci[head] = .success }
        try await run(context, runner)

        let merges = gitea.state.withLock { $0.merges }
        XCTAssertEqual(merges.map(\.head), [head], "the head whose CI was green, by name")
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(task.mergeSHA, InMemoryGitea.mergeCommit)
    }

    /// The lease's database session ends just as Gitea merges (a server restart, a proxy cutting
    /// the connection): another merge of the repository could hold the lease now, so this one
    /// applies nothing and is postponed. Its retry takes a new lease, finds the pull request
    /// merged and passes it, with one merge call in all.
    func testAMergeWhoseLeaseIsLostAppliesNothingAndItsRetryFindsItMerged() async throws {
        let runner = runner()
        let head = try await walkToMerge(runner)
        let pool = database.pool
        gitea.state.withLock {
            $0.ci[head] = .success
            $0.afterMerge = {
                _ = try? await pool.query(
                    "SELECT pg_terminate_backend(backend_pid) FROM merge_leases WHERE repo = 'acme/orch'")
            }
        }
        let context = try await claim("merge")
        do {
            try await runner.run(context)
            XCTFail("a merge whose lease was lost stops")
        } catch let postponed as JobPostponed {
            XCTAssertTrue(postponed.reason.contains("merge lease of acme/orch was lost"), postponed.reason)
        }
        var task = try await task()
        XCTAssertEqual(task.state.stage, .merge, "nothing applied without the lease")
        XCTAssertEqual(task.state.status, .active)
        XCTAssertFalse(context.completion.isCompleted)

        gitea.state.withLock { $0.afterMerge = nil }
        try await run(context, runner)
        task = try await self.task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(task.mergeSHA, InMemoryGitea.mergeCommit)
        XCTAssertEqual(gitea.state.withLock { $0.merges.count }, 1, "merged once")
    }

    func testRedCIHoldsTheTaskAtMergeWithoutCIFixRounds() async throws {
        repo.ciFixRounds = 0
        let runner = runner()
        let head = try await walkToMerge(runner)
        gitea.state.withLock { $0.ci[head] = .failure }
        try await step("merge", runner)

        try await assertHeld(saying: "CI failed on the PR head \(head.prefix(12)) (ci/build)")
        XCTAssertTrue(gitea.state.withLock { $0.merges.isEmpty })
    }

    /// CI feedback (issue #15 item 1): red CI on the PR head sends the task back to development
    /// with the failed checks in its prompt, once per CI fix round; past `ci_fix_rounds` it is
    /// held, and the hold records its lesson.
    func testRedCISendsTheTaskBackToDevelopmentWithTheFailedChecksUntilItsRoundsAreUsed() async throws {
        agent = stageAgent(writingSomethingNewEachRun: true)
        let runner = runner()
        var head = try await walkToMerge(runner)
        for round in 1...2 {
            gitea.state.withLock { $0.ci[head] = .failure }
            try await step("merge", runner)
            let task = try await task()
            XCTAssertEqual(task.state.stage, .development)
            XCTAssertEqual(task.state.status, .active)
            let event = try await lastEvent().event
            XCTAssertEqual(event, "ci_failed")
            let development = try await claim("development")
            let feedback = try RunStageJob.payload(of: development.job).feedback ?? ""
            XCTAssertTrue(feedback.contains("CI fix round \(round) of 2"), feedback)
            XCTAssertTrue(feedback.contains("- ci/build: failure — tests failed"), feedback)
            try await run(development, runner)
            let prompt = agent.requests.withLock { $0.last?.prompt ?? "" }
            XCTAssertTrue(prompt.contains("- ci/build: failure — tests failed"), prompt)
            try await step("review", runner)
            let reviewed = try await self.task()
            let next = try XCTUnwrap(reviewed.headSHA)
            XCTAssertNotEqual(next, head, "each round pushes a new head")
            head = next
        }
        gitea.state.withLock { $0.ci[head] = .failure }
        try await step("merge", runner)
        try await assertHeld(saying: "after 2 CI fix round(s) (ci_fix_rounds 2)")
        XCTAssertTrue(gitea.state.withLock { $0.merges.isEmpty })
        let lessons = try await LessonStore(pool: database.pool).list(
            type: "merge_hold", status: nil, repo: nil, workItem: workItem, limit: 10)
        XCTAssertEqual(lessons.count, 1)
    }

    /// Review feedback (issue #15 item 2): what reviewers said on the pull request sends the task
    /// back to development before its head is merged, for the review rounds a review agent gets;
    /// past them the task is held, and nothing is merged.
    func testReviewFeedbackOnThePullRequestSendsTheTaskBackBeforeAnyMerge() async throws {
        agent = stageAgent(writingSomethingNewEachRun: true)
        let runner = StageRunner(
            settings: .init(
                repos: [repo], agents: ["default": AgentCommand(command: ["agent"], timeout: nil)], maxReviewRounds: 1),
            pool: database.pool, agent: agent, git: git, gitea: gitea)
        var head = try await walkToMerge(runner)
        gitea.state.withLock { $0.ci[head] = .success }
        var delivery: Int64 = 100
        func review(_ text: String) async throws {
            delivery += 1
            let effect = try await tasks.recordFeedback(
                repo: "acme/orch", number: 1, kind: .changesRequested, source: "gitea_review",
                author: "dana (dana@example.com)", body: text, deliveryID: delivery)
            XCTAssertEqual(effect, .recorded(workItem: workItem, pending: true))
        }
        try await review("Handle the empty draft.")
        try await step("merge", runner)
        var task = try await task()
        XCTAssertEqual(task.state.stage, .development)
        let event = try await lastEvent().event
        XCTAssertEqual(event, "review_feedback")
        XCTAssertTrue(gitea.state.withLock { $0.merges.isEmpty }, "not merged over the review")
        let development = try await claim("development")
        let feedback = try RunStageJob.payload(of: development.job).feedback ?? ""
        XCTAssertTrue(feedback.contains("review round 1 of 1"), feedback)
        XCTAssertTrue(
            feedback.contains("- dana (dana@example.com) requested changes: Handle the empty draft."), feedback)
        try await run(development, runner)
        let prompt = agent.requests.withLock { $0.last?.prompt ?? "" }
        XCTAssertTrue(prompt.contains("Handle the empty draft."), prompt)
        try await step("review", runner)
        task = try await self.task()
        head = try XCTUnwrap(task.headSHA)
        let pending = try await tasks.pendingFeedback(workItem: workItem)
        XCTAssertTrue(pending.isEmpty, "applied with the transition")

        // Asked again past the rounds: held for an operator, still not merged.
        gitea.state.withLock { $0.ci[head] = .success }
        try await review("Still wrong.")
        try await step("merge", runner)
        try await assertHeld(saying: "asked for changes again after 1 review round(s) (limit 1): Still wrong.")
        XCTAssertTrue(gitea.state.withLock { $0.merges.isEmpty })
    }

    func testAGreenRunAfterACIFixMergesByItself() async throws {
        agent = stageAgent(writingSomethingNewEachRun: true)
        let runner = runner()
        let red = try await walkToMerge(runner)
        gitea.state.withLock { $0.ci[red] = .failure }
        try await step("merge", runner)
        try await step("development", runner)
        try await step("review", runner)
        let fixed = try await task()
        let green = try XCTUnwrap(fixed.headSHA)
        gitea.state.withLock { $0.ci[green] = .success }
        try await step("merge", runner)

        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(gitea.state.withLock { $0.merges.map(\.head) }, [green], "the fixed head merged, once")
    }

    /// An agent doing each stage's work. `writingSomethingNewEachRun`: each development and review
    /// run writes something new (a fix round, and the review after it, need a change of their own
    /// to pass their gates).
    private func stageAgent(writingSomethingNewEachRun fresh: Bool) -> ScriptedAgent {
        let docs = docs
        return ScriptedAgent(pool: database.pool, replicaID: replica, logs: root.appendingPathComponent("logs")) {
            request in
            let mark = fresh ? " (\(UUID()))" : ""
            switch request.stage {
            case "analysis": return .init(files: ["\(docs)/spec.md": "# Spec\n"])
            case "architecture": return .init(files: ["\(docs)/design.md": "# Design\n"])
            case "development":
                let value = fresh ? "\"\(UUID())\"" : "1"
                return .init(files: ["Sources/feature.swift": "let feature = \(value)\n"])
            default: return .init(files: ["\(docs)/review.md": "APPROVE\nlooks good\(mark)\n"])
            }
        }
    }

    func testConflictHoldsWithGiteasWords() async throws {
        let runner = runner()
        let head = try await walkToMerge(runner)
        gitea.state.withLock {
            $0.ci[head] = .success
            $0.mergeAnswers = [.conflict("CONFLICT (content): Merge conflict in feature.swift")]
        }
        try await step("merge", runner)

        try await assertHeld(saying: "Merge conflict in feature.swift")
    }

    func testMergeRefusedBecauseAlreadyMergedPassesWithTheMergeCommit() async throws {
        let runner = runner()
        let head = try await walkToMerge(runner)
        gitea.state.withLock {
            $0.ci[head] = .success
            // A retried merge: Gitea merged it on the first try, whose answer was lost.
            $0.pulls[1]?.merged = true
            $0.pulls[1]?.mergeSHA = InMemoryGitea.mergeCommit
            $0.pulls[1]?.state = "closed"
        }
        try await step("merge", runner)

        XCTAssertTrue(gitea.state.withLock { $0.merges.isEmpty }, "not merged twice")
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(task.mergeSHA, InMemoryGitea.mergeCommit)
    }

    func testStaleHeadIsReadAgainBeforeMerging() async throws {
        let runner = runner()
        let head = try await walkToMerge(runner)
        gitea.state.withLock {
            $0.ci[head] = .success
            $0.mergeAnswers = [.staleHead]
        }
        try await step("merge", runner)

        XCTAssertEqual(gitea.state.withLock { $0.merges.count }, 2, "merged after reading the PR again")
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
    }

    // MARK: - Without Gitea, and deploy

    func testLocalMergeConflictHoldsAndAMergeDeletesTheBranch() async throws {
        let runner = runner(withGitea: false)
        try await walkToMerge(runner)
        git.state.withLock { $0.localMerge = .conflict("CONFLICT (content): Merge conflict in feature.swift") }
        try await step("merge", runner)
        try await assertHeld(saying: "Merge conflict in feature.swift")

        _ = try await tasks.apply(.retry, workItem: workItem, actor: "test", reason: "resolved")
        let merged = String(repeating: "d", count: 40)
        git.state.withLock { $0.localMerge = .merged(merged) }
        try await step("merge", runner)
        var task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(task.mergeSHA, merged)
        XCTAssertEqual(git.state.withLock { $0.deletedBranches }, [workItem])

        // No deploy_command: deploy passes and the worktree is cleaned up.
        try await step("deploy", runner)
        task = try await self.task()
        XCTAssertEqual(task.state.stage, .done)
        XCTAssertEqual(git.state.withLock { $0.cleanedUp }, [workItem])
    }

    // MARK: - Post-deploy watch

    /// With `health_url` and the switch on, a successful deploy does not pass: in the transaction
    /// that completes the deploy job it creates the watch row and the `post_deploy_watch` job, and
    /// the task stays active in deploy. With the switch off the same deploy passes at once.
    func testAWatchedDeployHandsOverToItsWatchAndWithTheSwitchOffPassesAtOnce() async throws {
        var watched = repo
        watched.deployCommand = ["true"]
        watched.healthURL = "http://127.0.0.1:9/health"
        func runner(postDeploy: Bool) -> StageRunner {
            StageRunner(
                settings: .init(
                    repos: [watched], agents: ["default": AgentCommand(command: ["agent"], timeout: nil)],
                    switches: GateSwitches(postDeploy: postDeploy)),
                pool: database.pool, agent: agent, git: git, gitea: nil)
        }
        try await walkToMerge(runner(postDeploy: true))
        try await step("merge", runner(postDeploy: true))
        let deploy = try await claim("deploy")
        try await run(deploy, runner(postDeploy: true))

        XCTAssertTrue(deploy.completion.isCompleted, "the hand-over completed the deploy job")
        var task = try await task()
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(task.state.status, .active)
        let found = try await DeployWatchStore(pool: database.pool).watch(workItem: workItem, visit: task.visit)
        let watch = try XCTUnwrap(found?.watch)
        XCTAssertEqual(watch.result, .watching)
        XCTAssertEqual(watch.mergeSHA, task.mergeSHA)
        XCTAssertEqual(watch.healthURL, "http://127.0.0.1:9/health")
        XCTAssertEqual(watch.probes, 0)
        let queued = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 5, lease: .seconds(60))
        XCTAssertEqual(queued.map(\.kind), [PostDeployWatchJob.kind])
        let payload = try PostDeployWatchJob.payload(of: try XCTUnwrap(queued.first))
        XCTAssertEqual(payload, .init(work_item: workItem, visit: task.visit, merge_sha: try XCTUnwrap(task.mergeSHA)))
        XCTAssertEqual(git.state.withLock { $0.cleanedUp }, [workItem])

        // Degraded, then retried by an operator with the watch switched off: passed at once.
        _ = try await jobs.complete(try XCTUnwrap(queued.first?.lease))
        _ = try await tasks.apply(.deployDegraded(reason: "unhealthy"), workItem: workItem, actor: "test")
        _ = try await tasks.apply(.retry, workItem: workItem, actor: "test", reason: "again")
        try await step("deploy", runner(postDeploy: false))
        task = try await self.task()
        XCTAssertEqual(task.state.stage, .done)
    }
}
