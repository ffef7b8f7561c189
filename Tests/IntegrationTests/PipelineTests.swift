import Foundation
import Hummingbird
import NIOCore
import Store
import Synchronization
import TestSupport
import Workers
import XCTest

@testable import App

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The pipeline end to end: a real `orchestrator serve` process, a local bare git repository as the
/// remote, the example agent, and a signed Plane webhook that starts it all.
final class PipelineTests: DatabaseTestCase {
    var servers: [OrchestratorProcess] = []
    var root: URL!
    let secret = "pipeline-secret"
    let token = "pipeline-admin"
    let session = testURLSession()

    override func setUp() async throws {
        try await super.setUp()
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-pipeline-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(servers, testFailed: testRun?.hasSucceeded == false, tail: 6000)
        await PipelineHarness.killAgentsLeftRunning(in: database)
        try await super.tearDown()
        try? FileManager.default.removeItem(at: root)
    }

    @discardableResult
    private func git(_ arguments: [String], in directory: URL) throws -> String {
        try Self.git(arguments, in: directory)
    }

    /// Runs git (argv) with a fixed identity; throws with its output when it fails.
    @discardableResult
    static func git(_ arguments: [String], in directory: URL) throws -> String {
        try runGit(arguments, in: directory)
    }

    /// A bare repository with one commit on main, standing in for the Gitea remote.
    private func makeRemote() throws -> URL {
        try makeBareRemote(in: root)
    }

    private func start(
        remote: URL, defaultAgentOptions: [String], reviewerOptions: [String], replicas: Int = 1,
        stallTimeout: String? = nil, agentKeys: String = "",
        runners: (default: [[String]], reviewer: [[String]])? = nil, topLevelYAML: String = "",
        environment: [String: String] = [:]
    ) async throws -> [URL] {
        let agent = packageRoot.appendingPathComponent("examples/agent/agent.py").path
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        func list(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let config = root.appendingPathComponent("orchestrator.yaml")
        let stall = (stallTimeout.map { ", stall_timeout: \($0)" } ?? "") + agentKeys
        // Each role's agent: one command, or runners (each the example agent with its options;
        // `--plain` ones read as plain).
        func role(_ options: [String], _ runners: [[String]]?) -> String {
            guard let runners else { return "command: \(list([python, agent] + options))" }
            let entries = runners.map {
                "{ command: \(list([python, agent] + $0)), format: \($0.contains("--plain") ? "plain" : "claude-json") }"
            }
            return "runners: [\(entries.joined(separator: ", "))]"
        }
        try """
        repos:
          - project: ORCH
            plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544
            repo: acme/orch
            clone_url: \(remote.path)
            default_branch: main
            test_command: ["ls", "tests"]
        agents:
          default: { \(role(defaultAgentOptions, runners?.default)), timeout: 60s\(stall) }
          reviewer: { \(role(reviewerOptions, runners?.reviewer)), timeout: 60s\(stall) }
        \(topLevelYAML)
        """.write(to: config, atomically: true, encoding: .utf8)
        var bases: [URL] = []
        for index in 0..<replicas {
            bases.append(try launch(index, config: config, environment: environment))
        }
        for base in bases {
            let up = await waitUntilAnswering(base.appendingPathComponent("health/ready"))
            XCTAssertTrue(up, "replica \(base) ready")
        }
        return bases
    }

    private func sendIssue(to base: URL, labels: [String], action: String = "created") async throws {
        let status = try await sendPlaneIssue(
            to: base, secret: secret, labels: labels,
            fields: [
                "name": "Crash when saving a \"draft\" $(rm -rf ~)",
                "description_stripped": "Steps: save.\nline two `whoami`\n$(touch /tmp/orch-pwned)",
            ],
            action: action)
        XCTAssertEqual(status, 202)
    }

    private func adminGET(_ base: URL, _ path: String) async throws -> [String: Any] {
        var request = URLRequest(url: base.appendingPathComponent(path))
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await session.data(for: request)
        return (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// A Telegram Bot API stand-in (`/botTOKEN/sendMessage`) that records every message body.
    static func telegramStandIn(recording messages: CallLog) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/botTOKEN/sendMessage") { request, _ -> Response in
            messages.append(String(buffer: try await request.body.collect(upTo: 1 << 20)))
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        return router
    }

    /// Waits for the first agent run with a process, and returns it.
    private func firstLiveRun() async throws -> AgentRun {
        let runs = AgentRunStore(pool: database.pool)
        let running = try await waitUntil(timeout: .seconds(60)) { try await runs.live().first?.pid != nil }
        XCTAssertTrue(running, "an agent started")
        let live = try await runs.live().first
        return try XCTUnwrap(live)
    }

    /// Waits for the first live run, sends `text` as a Plane comment to the replica not running it,
    /// and waits until the request is kept for that run. Returns the run and the index of the
    /// replica running it.
    private func keepAgentRequestWhileARunIsLive(_ text: String, bases: [URL]) async throws -> (AgentRun, Int) {
        let run = try await firstLiveRun()
        let victim = try XCTUnwrap(servers.firstIndex { run.replicaID.hasPrefix($0.name + "-") })
        let kept = try await sendPlaneComment(to: bases[1 - victim], secret: secret, text: text)
        XCTAssertEqual(kept, 202)
        let recorded = try await waitUntil(timeout: .seconds(20)) {
            try await TaskStore(pool: self.database.pool).pendingFeedback(
                workItem: "ORCH-98", sources: ["plane_agent"]
            ).count == 1
        }
        XCTAssertTrue(recorded)
        return (run, victim)
    }

    private func task() async throws -> TaskRecord? {
        try await TaskStore(pool: database.pool).task(workItem: "ORCH-98")
    }

    func testAutoModeWalksEveryStageWithAGateRetryAndAReviewRound() async throws {
        let remote = try makeRemote()
        let base = try await start(
            remote: remote, defaultAgentOptions: ["--fail-gate-once", "analysis"],
            reviewerOptions: ["--request-changes-once"])[0]
        try await sendIssue(to: base, labels: ["auto"])
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        let state = try await task()?.state
        XCTAssertTrue(done, "task ended \(String(describing: state))")

        let history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98")
        XCTAssertEqual(
            history.map(\.event),
            [
                "stage_failed", "stage_passed",  // analysis: spec.md missing once, then written
                "stage_passed", "stage_passed",  // architecture, development
                "changes_requested",  // review asked for changes once
                "stage_passed", "stage_passed",  // development again, review approves
                "stage_passed", "stage_passed",  // merge, deploy (no deploy_command: skipped)
            ])
        XCTAssertEqual(history.last?.toStatus, "done")
        // The retried analysis job carried the gate's message as feedback.
        let retry = try await database.pool.query(
            """
            SELECT payload->>'feedback' AS feedback FROM jobs WHERE kind = 'run_stage' AND payload->>'stage' = 'analysis' AND (payload->>'attempt')::int = 1
            """
        ).first
        XCTAssertEqual(try retry?.decode("feedback", as: String.self), "docs/tasks/ORCH-98/spec.md is missing or empty")

        // Every agent run recorded with its cost; the branch merged into main on the remote.
        let runs = try await AgentRunStore(pool: database.pool).runs(workItem: "ORCH-98")
        XCTAssertEqual(
            runs.map { $0.stage ?? "" },
            ["analysis", "analysis", "architecture", "development", "review", "development", "review"])
        XCTAssertTrue(runs.allSatisfy { $0.exitCode == 0 && $0.usage.costUSD == 0.0123 })
        let untimed = try await database.pool.query(
            """
            SELECT count(*) AS n FROM agent_runs
            WHERE spawned_at IS NULL OR exited_at IS NULL OR workspace_ms IS NULL OR git_after_ms IS NULL OR exited_at < spawned_at
            """
        ).first!.decode("n", as: Int.self)
        XCTAssertEqual(untimed, 0, "every run has its timings (spawn, exit, git before and after)")
        let spec = try git(["show", "main:docs/tasks/ORCH-98/spec.md"], in: remote)
        XCTAssertTrue(spec.contains("Crash when saving"), spec)
        XCTAssertNoThrow(try git(["show", "main:src/orch_98.txt"], in: remote))
        let mergeSHA = try git(["rev-parse", "main"], in: remote).trimmingCharacters(in: .whitespacesAndNewlines)
        let merged = try await task()?.mergeSHA
        XCTAssertEqual(merged, mergeSHA)
        // Cost per stage on the task, and in the /metrics envelope.
        let detail = try await adminGET(base, "tasks/ORCH-98")
        XCTAssertEqual(detail["cost_usd"] as? Double ?? 0, 7 * 0.0123, accuracy: 1e-9)
        let byStage = detail["cost_by_stage"] as? [[String: Any]] ?? []
        XCTAssertEqual(
            byStage.map { $0["stage"] as? String ?? "" }, ["analysis", "architecture", "development", "review"])
        XCTAssertEqual(byStage.first?["runs"] as? Int, 2)
        XCTAssertEqual((detail["agent_runs"] as? [Any])?.count, 7)
        let metrics = try await adminGET(base, "metrics")
        XCTAssertEqual((metrics["cost"] as? [String: Any])?["runs"] as? Int, 7)
        XCTAssertEqual((metrics["agents"] as? [Any])?.count, 0, "no agent runs any more")
        // The worktree is cleaned up once the task is done.
        let worktree = root.appendingPathComponent("work-0/worktrees/acme__orch/ORCH-98").path
        XCTAssertFalse(FileManager.default.fileExists(atPath: worktree))
        let home = root.appendingPathComponent("work-0/homes/ORCH-98").path
        XCTAssertFalse(FileManager.default.fileExists(atPath: home), "the task's HOME goes with it")
    }

    func testManualModeStopsForApprovalAfterEachAgentStage() async throws {
        let remote = try makeRemote()
        let dump = root.appendingPathComponent("dump").path
        let base = try await start(remote: remote, defaultAgentOptions: ["--dump", dump], reviewerOptions: [])[0]
        try await sendIssue(to: base, labels: ["bug"])
        // Bug track: analysis, development, review need approval; architecture is skipped.
        for stage in ["analysis", "development", "review"] {
            let awaiting = try await waitUntil(timeout: .seconds(60)) {
                let task = try await self.task()
                return task?.state.status == .awaitingApproval
            }
            XCTAssertTrue(awaiting, "awaiting approval after \(stage)")
            var request = URLRequest(url: base.appendingPathComponent("tasks/ORCH-98/approve"))
            request.httpMethod = "POST"
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            let (_, response) = try await session.data(for: request)
            XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200, "approve after \(stage)")
        }
        let done = try await waitUntil(timeout: .seconds(60)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done)
        let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(
            events,
            [
                "stage_passed", "approved", "stage_passed", "approved", "stage_passed", "approved", "stage_passed",
                "stage_passed",
            ])
        let stages = try await AgentRunStore(pool: database.pool).runs(workItem: "ORCH-98").compactMap(\.stage)
        XCTAssertEqual(stages, ["analysis", "development", "review"], "bug track: no architecture run")
        // The hostile title and description reached the agent as stdin text, never as argv or
        // through a shell (the dump is the development agent's: the last `default` run).
        let prompt = try String(contentsOfFile: dump + "/prompt.txt", encoding: .utf8)
        XCTAssertTrue(prompt.contains(#"# Work item ORCH-98: Crash when saving a "draft" $(rm -rf ~)"#), prompt)
        XCTAssertTrue(prompt.contains("line two `whoami`\n$(touch /tmp/orch-pwned)"), prompt)
        let argv = try String(contentsOfFile: dump + "/argv.json", encoding: .utf8)
        XCTAssertFalse(argv.contains("draft") || argv.contains("rm -rf"), argv)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/orch-pwned"))
    }

    func testStopOnTheOtherReplicaKillsTheRunningAgentWithinTwoSeconds() async throws {
        let remote = try makeRemote()
        let bases = try await start(
            remote: remote, defaultAgentOptions: ["--spawn-child", "--sleep", "120"], reviewerOptions: [], replicas: 2)
        try await sendIssue(to: bases[0], labels: ["auto"])
        let runs = AgentRunStore(pool: database.pool)
        let run = try await firstLiveRun()
        let pid = try XCTUnwrap(run.pid)
        let owner = try XCTUnwrap(servers.firstIndex { run.replicaID.hasPrefix($0.name + "-") })
        let other = bases[1 - owner]
        // /metrics lists the live run with its pid and CPU ticks read from /proc.
        let agents = try await adminGET(bases[owner], "metrics")["agents"] as? [[String: Any]] ?? []
        XCTAssertEqual(agents.first?["pid"] as? Int, pid)
        XCTAssertNotNil(agents.first?["cpu_ticks"] as? Int, "\(agents)")

        let clock = ContinuousClock()
        let sent = clock.now
        try await sendIssue(to: other, labels: ["auto", "STOP"], action: "updated")
        let killed = await waitUntil(timeout: .seconds(10)) { livingProcesses(inGroup: pid).isEmpty }
        let took = clock.now - sent
        XCTAssertTrue(killed, "the agent's process group is gone")
        XCTAssertLessThan(took, .seconds(2), "STOP through the other replica killed the agent in \(took)")
        print("STOP via the other replica: agent group gone after \(took)")

        let ended = try await waitUntil(timeout: .seconds(10)) { try await runs.run(id: run.id)?.endedAt != nil }
        XCTAssertTrue(ended)
        let final = try await runs.run(id: run.id)
        XCTAssertEqual(final?.error, "cancelled", "the run is closed as cancelled, its partial cost recorded")
        let status = try await task()?.state.status
        XCTAssertEqual(status, .cancelled)
        let jobs = try await database.pool.query(
            "SELECT status FROM jobs WHERE kind = 'run_stage' AND payload->>'work_item' = 'ORCH-98'"
        ).rows.map { try $0.decode("status", as: String.self) }
        XCTAssertEqual(jobs, ["cancelled"])
        let stop = try await adminGET(bases[0], "queue")["stop"] as? [String: Any]
        XCTAssertEqual(stop?["cancelled_tasks"] as? Int, 1)
        XCTAssertEqual(stop?["cancelled_stage_jobs"] as? Int, 1)
        let recent = (stop?["recent"] as? [[String: Any]])?.first
        XCTAssertEqual(recent?["work_item"] as? String, "ORCH-98")
        XCTAssertEqual(recent?["reason"] as? String, "STOP label")

        // The cancelled task's worktree is kept for the retention (ORCH_WORKTREE_RETENTION), then
        // removed by the reaper's worktree-prune of the replica that had it.
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: remote.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        let workspace = Workspace(root: root.appendingPathComponent("work-\(owner)").path)
        let worktree = workspace.worktreePath(repo, workItem: "ORCH-98")
        XCTAssertTrue(FileManager.default.fileExists(atPath: worktree))
        let sweeper = WorkspaceSweeper(workspace: workspace, repos: [repo], pool: database.pool, logger: testLogger)
        let kept = try await sweeper.pruneWorktrees(endedFor: .seconds(3600))
        XCTAssertEqual(kept, [], "ended moments ago: kept for the retention")
        XCTAssertTrue(FileManager.default.fileExists(atPath: worktree))
        let swept = try await sweeper.pruneWorktrees(endedFor: .zero)
        XCTAssertEqual(swept, ["ORCH-98"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: worktree))
    }

    /// Starts replica `index` (again, after a crash: the same name) on a free port; returns its URL.
    @discardableResult
    private func launch(_ index: Int, config: URL, environment extra: [String: String] = [:]) throws -> URL {
        let (server, base) = try OrchestratorProcess.serving(
            name: "pipeline-\(index)", databaseURL: database.url, role: "all",
            environment: [
                "ORCH_PLANE_WEBHOOK_SECRET": secret, "ORCH_ADMIN_TOKEN": token, "ORCH_CONFIG": config.path,
                "ORCH_WORKDIR": root.appendingPathComponent("work-\(index)").path, "ORCH_POLL_INTERVAL": "1s",
            ].merging(extra) { $1 })
        servers.append(server)
        return base
    }

    func testAReplicaKilledMidStageLeavesTheStageToAnotherAndTheTaskCompletes() async throws {
        let remote = try makeRemote()
        let bases = try await start(
            remote: remote, defaultAgentOptions: ["--sleep", "1"], reviewerOptions: [], replicas: 2)
        try await sendIssue(to: bases[0], labels: ["auto"])
        let runs = AgentRunStore(pool: database.pool)
        let run = try await firstLiveRun()
        let victim = try XCTUnwrap(servers.firstIndex { run.replicaID.hasPrefix($0.name + "-") })
        servers[victim].signal(SIGKILL)

        // The leader closes the dead replica's run; the queue gives its job to the survivor.
        let closed = try await waitUntil(timeout: .seconds(20)) { try await runs.run(id: run.id)?.exitCode == -1 }
        XCTAssertTrue(closed, "the dead replica's run is closed with exit -1")
        let lost = try await runs.run(id: run.id)
        XCTAssertEqual(lost?.error, "replica \(run.replicaID) is gone")
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done, "the task completed on the surviving replica")
        let stages = try await runs.runs(workItem: "ORCH-98").filter { $0.exitCode == 0 }.compactMap(\.stage)
        XCTAssertEqual(stages, ["analysis", "architecture", "development", "review"])
    }

    /// SIGKILL mid-run (issue #15, items 2 and 4): the replica running a streaming analysis agent is
    /// killed while a `/agent` request waits for that run. A follower of the run on the survivor
    /// gets `end` once the leader closes the dead run (it never hangs), and the stage's job, handed
    /// to the survivor, applies the kept request exactly once.
    func testAKilledReplicasRunEndsItsFollowersAndItsKeptAgentRequestIsAppliedOnce() async throws {
        let remote = try makeRemote()
        let dump = root.appendingPathComponent("dump")
        let bases = try await start(
            remote: remote,
            defaultAgentOptions: ["--stream", "--sleep", "4", "--heartbeat", "0.2", "--dump", dump.path],
            reviewerOptions: [], replicas: 2)
        try await sendIssue(to: bases[0], labels: ["auto"])
        let (run, victim) = try await keepAgentRequestWhileARunIsLive(
            "/agent Mention the offline case.", bases: bases)
        let survivor = bases[1 - victim]
        let eventsSeen = try await waitUntil(timeout: .seconds(20)) {
            try await AgentRunEventStore(pool: self.database.pool).events(runID: run.id, after: 0, limit: 5).count >= 3
        }
        XCTAssertTrue(eventsSeen, "the run's output is stored while it runs")
        servers[victim].signal(SIGKILL)

        // The survivor's follower of the dead run: what was stored, then `end`.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-sN", "--max-time", "60", "-H", "Authorization: Bearer \(token)",
            survivor.appendingPathComponent("tasks/ORCH-98/runs/\(run.id)/events/stream").absoluteString,
        ]
        let pipe = Pipe()
        curl.standardOutput = pipe
        try curl.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        XCTAssertTrue(output.contains("event: end"), "the follower is released once the dead run is closed")
        XCTAssertTrue(output.contains("event: system"), output)
        let closed = try await AgentRunStore(pool: database.pool).run(id: run.id)
        XCTAssertEqual(closed?.exitCode, -1)

        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done, "the task completed on the survivor")
        let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(events.filter { $0 == "agent_feedback" }.count, 1, "applied once: \(events)")
        let prompts = try FileManager.default.contentsOfDirectory(atPath: dump.path)
            .filter { $0.hasPrefix("prompt-analysis-") }
            .map { try String(contentsOf: dump.appendingPathComponent($0), encoding: .utf8) }
        XCTAssertEqual(prompts.filter { $0.contains("Mention the offline case.") }.count, 1, "one run got it")
    }

    /// SIGSTOP past the TTL (issue #15 item 2): the paused replica's run ends after its job was
    /// handed on; its stale job must not apply the kept `/agent` request — the job that holds the
    /// stage now does, once.
    func testAPausedReplicasStaleJobDoesNotApplyAKeptAgentRequest() async throws {
        let remote = try makeRemote()
        let bases = try await start(
            remote: remote, defaultAgentOptions: ["--sleep", "4"], reviewerOptions: [], replicas: 2)
        try await sendIssue(to: bases[0], labels: ["auto"])
        let (run, victim) = try await keepAgentRequestWhileARunIsLive("/agent Be brief.", bases: bases)
        servers[victim].signal(SIGSTOP)
        let runs = AgentRunStore(pool: database.pool)
        let takenOver = try await waitUntil(timeout: .seconds(30)) {
            try await runs.runs(workItem: "ORCH-98").contains { $0.id != run.id && $0.stage == "analysis" }
        }
        XCTAssertTrue(takenOver, "the other replica runs the paused replica's stage")
        servers[victim].signal(SIGCONT)

        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done)
        let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(events.filter { $0 == "agent_feedback" }.count, 1, "applied once: \(events)")
        let stale = try await runs.run(id: run.id)
        XCTAssertNotEqual(stale?.outcome, "applied", "the paused run's outcome is not applied")
    }

    func testAReplicaPausedPastTheTTLAppliesNothingStaleAndComesBackUnderANewID() async throws {
        let remote = try makeRemote()
        let bases = try await start(
            remote: remote, defaultAgentOptions: ["--sleep", "4"], reviewerOptions: [], replicas: 2)
        try await sendIssue(to: bases[0], labels: ["auto"])
        let runs = AgentRunStore(pool: database.pool)
        let replicas = ReplicaStore(pool: database.pool)
        let run = try await firstLiveRun()
        let victim = try XCTUnwrap(servers.firstIndex { run.replicaID.hasPrefix($0.name + "-") })
        let name = servers[victim].name
        servers[victim].signal(SIGSTOP)

        // Past the TTL (3 s here) the other replica takes the stage over (a paused leader's
        // session is ended by the server, so leadership moves too).
        let takenOver = try await waitUntil(timeout: .seconds(30)) {
            try await runs.runs(workItem: "ORCH-98").contains {
                $0.stage == run.stage && !$0.replicaID.hasPrefix(name + "-")
            }
        }
        XCTAssertTrue(takenOver, "the other replica runs the paused replica's stage")
        let marked = try await waitUntil(timeout: .seconds(15)) {
            try await !replicas.live().contains { $0.id == run.replicaID }
        }
        XCTAssertTrue(marked, "the paused replica is marked stopped")
        servers[victim].signal(SIGCONT)

        // Within a heartbeat or two it is live again, under a new id.
        let revived = try await waitUntil(timeout: .seconds(10)) {
            try await replicas.live().contains { $0.name == name && $0.id != run.replicaID }
        }
        XCTAssertTrue(revived, "the resumed replica registered again under a new id")

        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        let state = try await task()?.state
        XCTAssertTrue(done, "task ended \(String(describing: state))")
        // Every stage passed exactly once: the stale run moved nothing.
        let passed = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").filter {
            $0.event == "stage_passed"
        }
        XCTAssertEqual(
            passed.map(\.fromStage), ["analysis", "architecture", "development", "review", "merge", "deploy"])
        let stale = try await runs.run(id: run.id)
        XCTAssertNotEqual(stale?.outcome, "applied", "the paused replica's run applied nothing")
        // Merged: the default branch has the task's work.
        let log = try git(["log", "--oneline", "main"], in: remote)
        XCTAssertTrue(log.contains("Merge orch/ORCH-98"), log)
    }

    func testTwoJobsOfOneTaskOnOneReplicaNeverShareTheWorktree() async throws {
        let remote = try makeRemote()
        let bases = try await start(
            remote: remote, defaultAgentOptions: ["--sleep", "3"], reviewerOptions: [],
            environment: ["ORCH_MAX_CONCURRENCY": "2"])
        try await sendIssue(to: bases[0], labels: ["auto"])
        let runs = AgentRunStore(pool: database.pool)
        let first = try await firstLiveRun()
        // A second job for the same stage (as a rescued job arriving while the stale run is still
        // being stopped would be): it must wait for the first run to end, not reset its worktree.
        let payload = try JSONB(
            encoding: StageJobPayload(work_item: "ORCH-98", stage: "analysis", visit: 1, attempt: 7, feedback: nil))
        try await JobStore(pool: database.pool).enqueue(NewJob(kind: TaskStore.stageJobKind, payload: payload))
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done)
        let all = try await runs.runs(workItem: "ORCH-98").sorted { $0.startedAt < $1.startedAt }
        for (earlier, later) in zip(all, all.dropFirst()) {
            let ended = try XCTUnwrap(earlier.endedAt)
            XCTAssertLessThanOrEqual(
                ended, later.startedAt, "runs \(earlier.id) and \(later.id) of one task overlapped")
        }
        XCTAssertEqual(all.first?.id, first.id)
    }

    func testARestartedReplicaKillsTheAgentItsPreviousLifeLeftRunning() async throws {
        let remote = try makeRemote()
        let messages = CallLog()
        let router = Self.telegramStandIn(recording: messages)
        try await StandInServer.with(router) { api in
            let telegram = [
                "ORCH_TELEGRAM_API_URL": api.absoluteString, "ORCH_TELEGRAM_BOT_TOKEN": "TOKEN",
                "ORCH_TELEGRAM_CHAT_ID": "42",
            ]
            let bases = try await start(
                remote: remote, defaultAgentOptions: ["--spawn-child", "--sleep", "120"], reviewerOptions: [],
                replicas: 1, environment: telegram)
            try await sendIssue(to: bases[0], labels: ["auto"])
            let runs = AgentRunStore(pool: database.pool)
            let run = try await firstLiveRun()
            let pid = try XCTUnwrap(run.pid)
            servers[0].signal(SIGKILL)
            _ = await servers[0].waitForExit(timeout: .seconds(10))
            XCTAssertFalse(
                livingProcesses(inGroup: pid).isEmpty, "the agent outlived its replica (its own process group)")

            try launch(0, config: root.appendingPathComponent("orchestrator.yaml"), environment: telegram)
            let gone = await waitUntil(timeout: .seconds(30)) { livingProcesses(inGroup: pid).isEmpty }
            XCTAssertTrue(gone, "the restarted replica killed its previous life's agent group")
            let closed = try await waitUntil(timeout: .seconds(10)) { try await runs.run(id: run.id)?.exitCode == -1 }
            XCTAssertTrue(closed)
            let orphan = try await runs.run(id: run.id)
            XCTAssertEqual(orphan?.error, "orphaned: replica pipeline-0 restarted")
            // The operator is alerted on Telegram.
            let alerted = await waitUntil(timeout: .seconds(20)) {
                messages.all.contains { $0.contains("orphaned agent run") }
            }
            XCTAssertTrue(alerted, "\(messages.all)")
        }
    }

    func testTransientAgentFailuresAreRetriedWithoutGateFailuresAndOpenTheBreaker() async throws {
        let remote = try makeRemote()
        let messages = CallLog()
        let router = Self.telegramStandIn(recording: messages)
        try await StandInServer.with(router) { api in
            let base = try await start(
                remote: remote, defaultAgentOptions: ["--transient"], reviewerOptions: [],
                environment: [
                    "ORCH_BREAKER_THRESHOLD": "2", "ORCH_BREAKER_COOLDOWN": "10m",
                    "ORCH_TELEGRAM_API_URL": api.absoluteString, "ORCH_TELEGRAM_BOT_TOKEN": "TOKEN",
                    "ORCH_TELEGRAM_CHAT_ID": "42",
                ])[0]
            try await sendIssue(to: base, labels: ["auto"])
            let breakers = CircuitBreakerStore(pool: database.pool)
            let opened = try await waitUntil(timeout: .seconds(60)) { try await breakers.state(name: "agents").isOpen }
            XCTAssertTrue(opened, "two transient failures opened the breaker")
            // The stage job waits out the cool-down instead of spending its attempts.
            let postponed = try await waitUntil(timeout: .seconds(30)) {
                let row = try await self.database.pool.query(
                    """
                    SELECT status, run_at > now() + interval '5 minutes' AS later, last_error FROM jobs WHERE kind = 'run_stage'
                    """
                ).first
                return try row?.decode("status", as: String.self) == "queued"
                    && row?.decode("later", as: Bool.self) == true
            }
            XCTAssertTrue(postponed, "the stage job is postponed until the breaker closes")
            let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
            XCTAssertEqual(events, [], "transient failures are not gate failures")
            let status = try await task()?.state.status
            XCTAssertEqual(status, .active)
            let resilience = try await adminGET(base, "queue")["resilience"] as? [String: Any]
            XCTAssertEqual(resilience?["state"] as? String, "open")
            XCTAssertEqual(resilience?["threshold"] as? Int, 2)
            XCTAssertEqual(resilience?["opened_count"] as? Int, 1)
            XCTAssertEqual(resilience?["postponed_jobs"] as? Int, 1)
            XCTAssertTrue((resilience?["last_reason"] as? String ?? "").contains("rate_limit"), "\(resilience ?? [:])")
            // The operator is alerted on Telegram that agent work is paused.
            let alerted = await waitUntil(timeout: .seconds(20)) {
                messages.all.contains { $0.contains("Circuit breaker open until") }
            }
            XCTAssertTrue(alerted, "\(messages.all)")
        }
    }

    /// Stall detection (issue #15 item 5): an agent that goes silent is stopped at its
    /// `stall_timeout`, not its 60 s timeout, and its stage is retried as a transient failure —
    /// no gate failure in the history — with a `stalled` lesson holding what it printed last. An
    /// agent that keeps printing runs past the stall timeout untouched.
    func testASilentAgentIsStoppedAtItsStallTimeoutAndItsStageRetried() async throws {
        let remote = try makeRemote()
        let base = try await start(
            remote: remote, defaultAgentOptions: ["--stall-once"],
            reviewerOptions: ["--sleep", "4", "--heartbeat", "0.5"],
            stallTimeout: "2s", environment: ["ORCH_BREAKER_THRESHOLD": "5"])[0]
        try await sendIssue(to: base, labels: ["auto"])
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done, "the task got past every stalled first run")

        let stalled = try await database.pool.query(
            """
            SELECT stage, error, extract(epoch FROM ended_at - started_at)::float8 AS seconds
            FROM agent_runs WHERE work_item = 'ORCH-98' AND stalled ORDER BY id
            """)
        XCTAssertEqual(
            try stalled.rows.map { try $0.decode("stage", as: String.self) },
            ["analysis", "architecture", "development"])
        for row in stalled.rows {
            XCTAssertEqual(try row.decode("error", as: String?.self), "stalled: no output for 2s")
            // Stopped at the stall timeout (plus SIGTERM's effect), far from the 60 s timeout.
            XCTAssertLessThan(try row.decode("seconds", as: Double.self), 15)
        }
        let review = try await database.pool.query(
            """
            SELECT bool_or(stalled) AS stalled, max(extract(epoch FROM ended_at - started_at))::float8 AS seconds
            FROM agent_runs WHERE work_item = 'ORCH-98' AND stage = 'review'
            """
        ).first
        XCTAssertEqual(
            try review?.decode("stalled", as: Bool.self), false, "a reviewer printing every 0.5 s is not stalled")
        XCTAssertGreaterThan(try review?.decode("seconds", as: Double.self) ?? 0, 3.5)

        let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
        XCTAssertFalse(events.contains("stage_failed"), "a stall is not a gate failure: \(events)")
        let lessons = try await database.pool.query(
            "SELECT stage, agent, root_cause, detail->>'last_output' AS last FROM lessons WHERE type = 'stalled' ORDER BY id"
        )
        XCTAssertEqual(
            try lessons.rows.map { try $0.decode("stage", as: String.self) },
            ["analysis", "architecture", "development"])
        for row in lessons.rows {
            XCTAssertEqual(try row.decode("agent", as: String?.self), "default")
            XCTAssertTrue(try row.decode("root_cause", as: String.self).contains("printed nothing for 2s"))
            XCTAssertTrue(try row.decode("last", as: String?.self)?.contains("now goes silent") ?? false)
        }
        // Each stall counted toward the circuit breaker, as a rate limit would be.
        let resilience = try await adminGET(base, "queue")["resilience"] as? [String: Any]
        XCTAssertEqual(resilience?["failures_in_window"] as? Int, 3, "\(resilience ?? [:])")
        XCTAssertTrue((resilience?["last_reason"] as? String ?? "").contains("printed nothing for 2s"))
    }

    /// Live output (issue #15 item 4): an SSE client on replica B follows a run executing on
    /// replica A — the events are in Postgres — from its first event to its result, in order and
    /// without a gap, receiving the first before the run ends; the paged API serves the same.
    func testAnSSEClientOnOneReplicaFollowsARunOnAnother() async throws {
        let remote = try makeRemote()
        let bases = try await start(
            remote: remote, defaultAgentOptions: ["--stream", "--sleep", "3", "--heartbeat", "0.25"],
            reviewerOptions: [], replicas: 2)
        try await sendIssue(to: bases[0], labels: ["auto"])
        let run = try await firstLiveRun()
        let runner = try XCTUnwrap(servers.firstIndex { run.replicaID.hasPrefix($0.name + "-") })
        let follower = bases[1 - runner]
        let url = follower.appendingPathComponent("tasks/ORCH-98/runs/\(run.id)/events/stream")

        // curl as the SSE client, its output timed as it arrives.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sN", "--max-time", "60", "-H", "Authorization: Bearer \(token)", url.absoluteString]
        let pipe = Pipe()
        curl.standardOutput = pipe
        let chunks = Mutex<[(Date, String)]>([])
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { chunks.withLock { $0.append((Date(), String(decoding: data, as: UTF8.self))) } }
        }
        try curl.run()
        let ended = await waitUntil(timeout: .seconds(60)) { !curl.isRunning }
        XCTAssertTrue(ended, "the stream ends after the run's last event")
        pipe.fileHandleForReading.readabilityHandler = nil
        let rest = pipe.fileHandleForReading.readDataToEndOfFile()
        if !rest.isEmpty { chunks.withLock { $0.append((Date(), String(decoding: rest, as: UTF8.self))) } }
        let received = chunks.withLock { $0 }
        let text = received.map(\.1).joined()

        let ids = text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        let kinds = text.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
        XCTAssertEqual(ids, Array(1...max(1, ids.count)), "every event, in order, no gap")
        XCTAssertEqual(kinds.first, "system", "from the first event (init, with the session)")
        XCTAssertEqual(kinds.suffix(2), ["result", "end"], "to the result, then the end")
        XCTAssertGreaterThan(kinds.filter { $0 == "assistant" }.count, 5, "the heartbeats in between")
        let stored = try await database.pool.query(
            "SELECT count(*)::int AS n FROM agent_run_events WHERE run_id = $1", [run.id]
        ).first?.decode("n", as: Int.self)
        XCTAssertEqual(stored, ids.count)

        // Followed live: the first event arrived before the run ended.
        let endedAt = try await AgentRunStore(pool: database.pool).run(id: run.id)?.endedAt
        let first = try XCTUnwrap(received.first { $0.1.contains("event: system") }?.0)
        XCTAssertLessThan(first, try XCTUnwrap(endedAt), "the client saw the run while it ran")

        // The paged API, on the runner's replica this time.
        var request = URLRequest(
            url: bases[runner].appendingPathComponent("tasks/ORCH-98/runs/\(run.id)/events").appending(
                queryItems: [URLQueryItem(name: "after", value: "2"), URLQueryItem(name: "limit", value: "3")]))
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await session.data(for: request)
        let page = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let seqs = (page?["events"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int }
        XCTAssertEqual(seqs, [3, 4, 5])
        XCTAssertEqual(page?["next_after"] as? Int, 5)
        XCTAssertEqual(page?["ended"] as? Bool, true)
        let firstData = ((page?["events"] as? [[String: Any]])?.first?["data"]) as? [String: Any]
        XCTAssertEqual(firstData?["type"] as? String, "assistant", "a JSON line is served as its object")
    }

    /// `/agent <text>` while an agent stage runs (issue #15 item 2): the run is not interrupted;
    /// when it ends, the stage runs again with the text in its prompt, and the task goes on.
    func testAnAgentCommentWhileTheStageRunsRunsItAgainWithTheText() async throws {
        let remote = try makeRemote()
        let dump = root.appendingPathComponent("dump")
        let base = try await start(
            remote: remote, defaultAgentOptions: ["--sleep", "2", "--dump", dump.path], reviewerOptions: [])[0]
        try await sendIssue(to: base, labels: ["auto"])
        let run = try await firstLiveRun()
        XCTAssertEqual(run.stage, "analysis")
        let answered = try await sendPlaneComment(
            to: base, secret: secret, text: "/agent Mention the offline case in the spec.")
        XCTAssertEqual(answered, 202)
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done)

        let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(Array(events.prefix(2)), ["agent_feedback", "stage_passed"], "\(events)")
        let prompts = try FileManager.default.contentsOfDirectory(atPath: dump.path)
            .filter { $0.hasPrefix("prompt-analysis-") }.sorted()
        XCTAssertEqual(prompts.count, 2, "analysis ran again: \(prompts)")
        let again = try prompts.map { try String(contentsOf: dump.appendingPathComponent($0), encoding: .utf8) }
        XCTAssertEqual(
            again.filter {
                $0.contains("A person asked on the work item (dana): Mention the offline case in the spec.")
            }
            .count, 1)
    }

    /// Budgets (issue #15 item 6): a task whose runs used up `per_task_usd` waits for approval in
    /// its stage, with the figures, before the next agent runs; `/approve` lets it run once (the
    /// check applies again after), and each run gets what is left through the `budget` template.
    func testATaskCrossingItsBudgetPausesWithTheFiguresAndApproveResumesIt() async throws {
        let remote = try makeRemote()
        let base = try await start(
            remote: remote, defaultAgentOptions: [], reviewerOptions: [],
            agentKeys: #", budget: ["--max-budget-usd", "{remaining_usd}"]"#,
            topLevelYAML: "budgets: { per_task_usd: 0.02, per_day_usd: 100 }")[0]
        try await sendIssue(to: base, labels: ["auto"])
        // Analysis and architecture cost $0.0123 each: development finds $0.0246 of $0.02 spent.
        let paused = try await waitUntil(timeout: .seconds(120)) {
            let task = try await self.task()
            return task?.state.stage == .development && task?.state.status == .awaitingApproval
        }
        let state = try await task()?.state
        XCTAssertTrue(paused, "\(String(describing: state))")
        var history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98")
        XCTAssertEqual(history.last?.event, "budget_exceeded")
        XCTAssertEqual(
            history.last?.reason,
            "budget used up before the development agent ran: per_task_usd: $0.0246 of $0.02; "
                + "/approve lets ORCH-98 run once more")
        let commands = try await database.pool.query(
            "SELECT array_to_string(command[array_length(command, 1) - 1:], ' ') AS tail FROM agent_runs ORDER BY id")
        XCTAssertEqual(
            try commands.rows.map { try $0.decode("tail", as: String.self) },
            ["--max-budget-usd 0.02", "--max-budget-usd 0.01"], "each run is told what is left")
        let queue = try await adminGET(base, "queue")["budget"] as? [String: Any]
        XCTAssertEqual((queue?["paused"] as? [[String: Any]])?.first?["work_item"] as? String, "ORCH-98")
        XCTAssertEqual(queue?["spent_today_usd"] as? Double ?? 0, 0.0246, accuracy: 1e-9)
        let shown = try await adminGET(base, "tasks/ORCH-98")["budget"] as? [String: Any]
        XCTAssertEqual(shown?["per_task_usd"] as? Double, 0.02)
        XCTAssertEqual(shown?["remaining_usd"] as? Double, 0)

        // The operator approves: development runs once, and review finds the budget used up again.
        var request = URLRequest(url: base.appendingPathComponent("tasks/ORCH-98/approve"))
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (_, response) = try await session.data(for: request)
        XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200)
        let pausedAgain = try await waitUntil(timeout: .seconds(60)) {
            let task = try await self.task()
            return task?.state.stage == .review && task?.state.status == .awaitingApproval
        }
        XCTAssertTrue(pausedAgain)
        history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98")
        XCTAssertEqual(
            history.suffix(4).map(\.event), ["budget_exceeded", "approved", "stage_passed", "budget_exceeded"])
        let developmentRuns = try await database.pool.query(
            "SELECT count(*) AS n FROM agent_runs WHERE stage = 'development'"
        ).first?.decode("n", as: Int.self)
        XCTAssertEqual(developmentRuns, 1)
    }

    /// Runner choice (issue #15 item 7): a stage's first try takes the role's first runner and its
    /// next try the next (a cheaper model that fails development, then a stronger one), and a
    /// rate-limited runner hands over to the next at once — no job retry, nothing for the breaker.
    func testRunnersTakeTurnsByTryAndARateLimitedOneHandsOverAtOnce() async throws {
        let remote = try makeRemote()
        let base = try await start(
            remote: remote, defaultAgentOptions: [], reviewerOptions: [],
            runners: (
                default: [["--fail-gate", "development"], ["--plain"]],
                reviewer: [["--transient"], ["--cost", "0.5"]]
            ))[0]
        try await sendIssue(to: base, labels: ["auto"])
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done)

        let runs = try await database.pool.query(
            "SELECT stage, runner, cost_usd FROM agent_runs WHERE work_item = 'ORCH-98' ORDER BY id")
        let seen = try runs.rows.map {
            "\(try $0.decode("stage", as: String.self)) \(try $0.decode("runner", as: Int.self))"
        }
        XCTAssertEqual(
            seen, ["analysis 0", "architecture 0", "development 0", "development 1", "review 0", "review 1"])
        let costs = try runs.rows.map { try $0.decode("cost_usd", as: Double?.self) }
        XCTAssertNil(costs[3], "the plain runner's cost is unknown")
        XCTAssertEqual(costs[5], 0.5)
        let reviewAttempt = try await database.pool.query(
            "SELECT attempt FROM jobs WHERE kind = 'run_stage' AND payload->>'stage' = 'review'"
        ).first?.decode("attempt", as: Int.self)
        XCTAssertEqual(reviewAttempt, 1, "the rate-limited runner handed over within the same job")
        let resilience = try await adminGET(base, "queue")["resilience"] as? [String: Any]
        XCTAssertEqual(resilience?["failures_in_window"] as? Int, 0, "a handed-over rate limit is not the breaker's")
    }

    /// Session resume (issue #15 item 3): development's gate fails once, and its second try
    /// resumes the first run's session (`resume: ["--resume", "{session_id}"]`); `/tasks/{wi}`
    /// shows which run resumed which.
    func testAStageTriedAgainResumesTheRecordedSession() async throws {
        let remote = try makeRemote()
        let base = try await start(
            remote: remote, defaultAgentOptions: ["--stream", "--fail-gate-once", "development"], reviewerOptions: [],
            agentKeys: #", resume: ["--resume", "{session_id}"]"#)[0]
        try await sendIssue(to: base, labels: ["auto"])
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done)

        let runs = try await database.pool.query(
            """
            SELECT id, array_to_string(command[array_length(command, 1) - 1:], ' ') AS tail, session_id, resumed_from,
                   resume_note
            FROM agent_runs
            WHERE work_item = 'ORCH-98' AND stage = 'development' ORDER BY id
            """)
        XCTAssertEqual(runs.rows.count, 2)
        let first = try runs.rows[0].decode("id", as: Int64.self)
        let session = try XCTUnwrap(try runs.rows[0].decode("session_id", as: String?.self))
        XCTAssertNil(try runs.rows[0].decode("resumed_from", as: Int64?.self), "the first try starts fresh")
        XCTAssertEqual(try runs.rows[1].decode("resumed_from", as: Int64?.self), first)
        XCTAssertEqual(
            try runs.rows[1].decode("tail", as: String.self), "--resume \(session)",
            "the retry resumes the first run's session")
        XCTAssertEqual(try runs.rows[1].decode("session_id", as: String?.self), session, "and continues it")
        XCTAssertNil(try runs.rows[1].decode("resume_note", as: String?.self))

        let shown = try await adminGET(base, "tasks/ORCH-98")["agent_runs"] as? [[String: Any]] ?? []
        let resumed = shown.first { ($0["resumed_from"] as? Int).map(Int64.init) == first }
        XCTAssertEqual(resumed?["session_id"] as? String, session, "\(shown)")
    }

    /// A session the agent cannot resume: the resumed run ends without a result and a fresh run
    /// follows at once, saying why.
    func testARunThatCannotResumeStartsAFreshSessionAndSaysSo() async throws {
        let remote = try makeRemote()
        let base = try await start(
            remote: remote,
            defaultAgentOptions: ["--stream", "--lose-sessions", "--fail-gate-once", "development"],
            reviewerOptions: [], agentKeys: #", resume: ["--resume", "{session_id}"]"#)[0]
        try await sendIssue(to: base, labels: ["auto"])
        let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
        XCTAssertTrue(done)

        let runs = try await database.pool.query(
            """
            SELECT id, exit_code, session_id, resumed_from, resume_note FROM agent_runs
            WHERE work_item = 'ORCH-98' AND stage = 'development' ORDER BY id
            """)
        XCTAssertEqual(runs.rows.count, 3, "fresh, resumed (failed), fresh again")
        let first = try runs.rows[0].decode("id", as: Int64.self)
        XCTAssertEqual(try runs.rows[1].decode("resumed_from", as: Int64?.self), first)
        XCTAssertEqual(try runs.rows[1].decode("exit_code", as: Int?.self), 1)
        XCTAssertNil(try runs.rows[2].decode("resumed_from", as: Int64?.self))
        let note = try runs.rows[2].decode("resume_note", as: String?.self) ?? ""
        XCTAssertTrue(note.contains("could not be resumed"), note)
        XCTAssertTrue(note.contains("started a fresh session"), note)
        let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(events.filter { $0 == "stage_failed" }.count, 1, "only the gate's failure counts: \(events)")
    }

    func testEveryTransitionIsNotifiedOnTelegramAndAsAPlaneCommentOnce() async throws {
        let telegram = CallLog()
        let comments = CallLog()
        let router = Router()
        let rateLimited = Mutex(true)
        router.post("/botTOKEN/sendMessage") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            if rateLimited.withLock({ first in
                defer { first = false }; return first
            }) {
                return Response(
                    status: .tooManyRequests,
                    body: ResponseBody(
                        byteBuffer: ByteBuffer(string: #"{"ok":false,"error_code":429,"parameters":{"retry_after":1}}"#)
                    ))
            }
            telegram.append(body)
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        router.post("/api/v1/workspaces/acme/projects/:project/issues/:issue/comments/") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            let id =
                ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["external_id"]
                as? String ?? ""
            if comments.all.contains(where: { $0.contains(id) }) { return Response(status: .conflict) }
            comments.append(body)
            return Response(status: .created)
        }
        let remote = try makeRemote()
        try await StandInServer.with(router) { api in
            let base = try await start(
                remote: remote, defaultAgentOptions: [], reviewerOptions: [],
                environment: [
                    "ORCH_TELEGRAM_API_URL": api.absoluteString, "ORCH_TELEGRAM_BOT_TOKEN": "TOKEN",
                    "ORCH_TELEGRAM_CHAT_ID": "42",
                    "ORCH_PLANE_API_URL": api.absoluteString, "ORCH_PLANE_API_KEY": "k", "ORCH_PLANE_WORKSPACE": "acme",
                ])[0]
            try await sendIssue(to: base, labels: ["auto"])
            let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
            XCTAssertTrue(done)
            let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").count
            let delivered = await waitUntil(timeout: .seconds(30)) {
                telegram.all.count == events && comments.all.count == events
            }
            XCTAssertTrue(
                delivered, "\(telegram.all.count) messages and \(comments.all.count) comments for \(events) events")
        }
        let first = try XCTUnwrap(
            telegram.all.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        XCTAssertEqual(first["chat_id"] as? String, "42")
        XCTAssertEqual(first["parse_mode"] as? String, "HTML")
        let text = first["text"] as? String ?? ""
        XCTAssertTrue(text.hasPrefix("<b>ORCH-98</b> ORCH-98 Crash when saving"), text)
        // Messages may arrive out of order (the first one waited out Telegram's 429).
        XCTAssertTrue(
            telegram.all.contains { $0.contains("analysis → architecture (active) — stage passed by system") },
            "\(telegram.all)")
        let ids = comments.all.compactMap { body in
            body.range(of: "task-event-[0-9]+", options: .regularExpression).map { String(body[$0]) }
        }
        XCTAssertEqual(ids.count, comments.all.count)
        XCTAssertEqual(Set(ids).count, ids.count, "one comment per event")
        XCTAssertTrue(
            comments.all.allSatisfy { $0.contains("<!-- orchestrator -->") }, "the service's own comments are marked")
    }

    /// A Gitea stand-in over the bare remote: pull requests, combined status (controlled by the
    /// test), and a merge that really merges in the remote repository.
    private func giteaAPI(remote: URL, ciState: SharedValue<String>, calls: CallLog) -> Router<BasicRequestContext> {
        let router = Router()
        let pulls = Mutex<[String: Int]>([:])  // head branch → number
        let merged = Mutex<String?>(nil)
        let root = self.root!
        let git: @Sendable ([String], URL) throws -> String = {
            try Self.git($0, in: $1).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        @Sendable func json(_ status: HTTPResponse.Status, _ object: Any) -> Response {
            Response(
                status: status,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))))
        }
        router.post("/api/v1/repos/acme/orch/pulls") { request, _ -> Response in
            let body =
                (try? JSONSerialization.jsonObject(with: Data(buffer: try await request.body.collect(upTo: 1 << 20))))
                as? [String: Any] ?? [:]
            let head = body["head"] as? String ?? ""
            calls.append("open \(head)")
            if pulls.withLock({ $0[head] }) != nil {
                return json(.conflict, ["message": "pull request already exists"])
            }
            pulls.withLock { $0[head] = 1 }
            return json(.created, ["number": 1, "head": ["ref": head, "sha": try git(["rev-parse", head], remote)]])
        }
        router.get("/api/v1/repos/acme/orch/pulls") { _, _ -> Response in
            json(.ok, pulls.withLock { $0 }.map { ["number": $0.value, "head": ["ref": $0.key]] })
        }
        router.get("/api/v1/repos/acme/orch/commits/:sha/status") { _, _ -> Response in
            calls.append("status")
            return json(.ok, ["state": ciState.value])
        }
        router.post("/api/v1/repos/acme/orch/pulls/1/merge") { request, _ -> Response in
            let body =
                (try? JSONSerialization.jsonObject(with: Data(buffer: try await request.body.collect(upTo: 1 << 20))))
                as? [String: Any] ?? [:]
            calls.append("merge")
            guard let head = pulls.withLock({ $0.first?.key }),
                body["head_commit_id"] as? String == (try git(["rev-parse", head], remote))
            else {
                return json(.conflict, ["message": "head moved"])
            }
            let work = root.appendingPathComponent("gitea-merge-\(UUID().uuidString.prefix(6))")
            _ = try git(["clone", "--quiet", remote.path, work.path], root)
            _ = try git(["merge", "--no-ff", "--quiet", "-m", "Merge pull request #1", "origin/\(head)"], work)
            _ = try git(["push", "--quiet", "origin", "HEAD:main"], work)
            merged.withLock { $0 = try? git(["rev-parse", "HEAD"], work) }
            return json(.ok, [:])
        }
        router.get("/api/v1/repos/acme/orch/pulls/1") { _, _ -> Response in
            let sha = merged.withLock { $0 }
            return json(.ok, ["merged": sha != nil, "merge_commit_sha": sha as Any, "head": ["sha": ""]])
        }
        return router
    }

    func testWithGiteaTheMergeWaitsForGreenCIOnThePRHeadAndAStatusWebhookWakesIt() async throws {
        let remote = try makeRemote()
        let ciState = SharedValue("pending")
        let calls = CallLog()
        try await StandInServer.with(giteaAPI(remote: remote, ciState: ciState, calls: calls)) { api in
            let base = try await start(
                remote: remote, defaultAgentOptions: [], reviewerOptions: [],
                environment: [
                    "ORCH_GITEA_API_URL": api.absoluteString, "ORCH_GITEA_TOKEN": "gitea-token",
                    "ORCH_GITEA_WEBHOOK_SECRET": "gitea-secret",
                    "ORCH_CI_POLL_INTERVAL": "10m",
                ])[0]
            try await sendIssue(to: base, labels: ["auto"])
            // Development opened PR #1; the merge looked at CI (pending) and now waits.
            let waiting = try await waitUntil(timeout: .seconds(60)) {
                try await self.task()?.state.stage == .merge && calls.all.contains("status")
            }
            XCTAssertTrue(waiting, "\(calls.all)")
            let task = try await self.task()
            XCTAssertEqual(task?.prNumber, 1)
            let head = try XCTUnwrap(task?.headSHA)
            XCTAssertFalse(calls.all.contains("merge"), "no merge while CI is pending")

            // CI turns green: Gitea's status webhook wakes the merge at once (the poll is 10 min).
            ciState.value = "success"
            var status =
                try JSONSerialization.jsonObject(with: Data(try WebhookTests.fixture("gitea/status_success.json")))
                as! [String: Any]
            status["sha"] = head
            status["id"] = 5000
            let body = Array(try JSONSerialization.data(withJSONObject: status))
            var request = URLRequest(url: base.appendingPathComponent("webhook/gitea"))
            request.httpMethod = "POST"
            request.httpBody = Data(body)
            request.setValue("status", forHTTPHeaderField: "X-Gitea-Event")
            request.setValue(UUID().uuidString, forHTTPHeaderField: "X-Gitea-Delivery")
            request.setValue(
                WebhookSignature.hmacSHA256Hex(secret: "gitea-secret", body: body),
                forHTTPHeaderField: "X-Gitea-Signature")
            let (_, response) = try await session.data(for: request)
            XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 202)
            let done = try await waitUntil(timeout: .seconds(20)) { try await self.task()?.state.status == .done }
            XCTAssertTrue(done, "merged and done after the status webhook")
        }
        XCTAssertEqual(calls.all.filter { $0 == "merge" }.count, 1)
        let main = try git(["rev-parse", "main"], in: remote).trimmingCharacters(in: .whitespacesAndNewlines)
        let merged = try await task()?.mergeSHA
        XCTAssertEqual(merged, main, "the merge commit Gitea made is recorded")
        let history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98")
        XCTAssertTrue(
            history.contains { $0.reason?.hasPrefix("PR #1 merged as") == true }, "\(history.map { $0.reason ?? "" })")
        XCTAssertTrue(history.contains { $0.reason?.contains(", PR #1") == true })
    }
}

/// A value shared with a stand-in server's handlers.
final class SharedValue<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

// Gates that read what a hostile agent committed, and Gitea's existing pull request.
extension PipelineTests {
    func testASpecCommittedAsALinkToDevZeroFailsTheGateAndTheReplicaStaysHealthy() async throws {
        let remote = try makeRemote()
        let base = try await start(
            remote: remote, defaultAgentOptions: ["--spec-symlink", "/dev/zero"], reviewerOptions: [],
            environment: ["ORCH_HEARTBEAT_INTERVAL": "1s"])[0]
        try await sendIssue(to: base, labels: ["auto"])
        let reason = "docs/tasks/ORCH-98/spec.md is refused: it is a symbolic link"
        let failedGate = try await waitUntil(timeout: .seconds(60)) {
            let history = try await TaskStore(pool: self.database.pool).history(workItem: "ORCH-98")
            return history.contains { $0.event == "stage_failed" && $0.reason?.hasPrefix(reason) == true }
        }
        XCTAssertTrue(failedGate, "the analysis gate refused the link")
        // The retries (whose prompts read spec.md too) end the task as failed, not a stuck replica.
        let failed = try await waitUntil(timeout: .seconds(60)) { try await self.task()?.state.status == .failed }
        XCTAssertTrue(failed)
        let beat = "SELECT extract(epoch FROM max(heartbeat_at))::float8 AS at FROM replicas"
        let before = try await database.pool.query(beat).first?.decode("at", as: Double.self) ?? 0
        let advancing = try await waitUntil(timeout: .seconds(20)) {
            (try await self.database.pool.query(beat).first?.decode("at", as: Double.self) ?? 0) > before
        }
        XCTAssertTrue(advancing, "the replica's heartbeat keeps advancing")
        let ready = await waitUntilAnswering(base.appendingPathComponent("health/ready"), timeout: .seconds(5))
        XCTAssertTrue(ready)
    }

    func testAReviewRoundWithAnAlreadyOpenPullRequestPassesEndToEnd() async throws {
        let remote = try makeRemote()
        let gitea = GiteaStandIn.over(remote: remote, root: root)
        // Other work in the repository, and a fork's PR from a branch of the same name.
        for index in 0..<55 { gitea.add(headRef: "feature/\(index)", headRepo: "acme/orch") }
        gitea.add(headRef: "orch/ORCH-98", headRepo: "mallory/orch")
        try await StandInServer.with(gitea.router) { api in
            let base = try await start(
                remote: remote, defaultAgentOptions: [], reviewerOptions: ["--request-changes-once"],
                environment: [
                    "ORCH_GITEA_API_URL": api.absoluteString, "ORCH_GITEA_TOKEN": "gitea-token",
                    "ORCH_GITEA_WEBHOOK_SECRET": "gitea-secret", "ORCH_CI_POLL_INTERVAL": "1s",
                ])[0]
            try await sendIssue(to: base, labels: ["auto"])
            let done = try await waitUntil(timeout: .seconds(120)) { try await self.task()?.state.status == .done }
            let state = try await self.task()?.state
            XCTAssertTrue(done, "\(String(describing: state)) \(gitea.requestLog.suffix(8))")
        }
        let ours = try XCTUnwrap(gitea.all.first { $0.headRepo == "acme/orch" && $0.headRef == "orch/ORCH-98" })
        let history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98")
        XCTAssertEqual(history.filter { $0.event == "changes_requested" }.count, 1)
        // Both development rounds name the same PR: the second found the open one.
        let rounds = history.filter { $0.reason?.contains(", PR #") == true }.compactMap(\.reason)
        XCTAssertEqual(rounds.count, 2, "\(history.map { $0.reason ?? "" })")
        XCTAssertTrue(rounds.allSatisfy { $0.hasSuffix(", PR #\(ours.number)") }, "\(rounds)")
        XCTAssertEqual(gitea.requestLog.filter { $0.hasPrefix("POST") && $0.hasSuffix("/pulls") }.count, 2)
        XCTAssertTrue(gitea.requestLog.contains("GET /api/v1/repos/acme/orch/pulls?state=open&page=1&limit=50"))
        let prNumber = try await task()?.prNumber
        XCTAssertEqual(prNumber, ours.number)
        XCTAssertEqual(gitea.mergeCalls.map(\.title), ["Merge orch/ORCH-98 (ORCH-98)"])
        let subject = try Self.git(["log", "-1", "--format=%s", "main"], in: remote)
        XCTAssertEqual(subject.trimmingCharacters(in: .whitespacesAndNewlines), "Merge orch/ORCH-98 (ORCH-98)")
    }
}
