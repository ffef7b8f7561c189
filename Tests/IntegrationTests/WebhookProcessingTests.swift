import Foundation
import Logging
import Store
import TestSupport
import Workers
import XCTest

@testable import App

/// Stored deliveries turned into task changes by the `process_webhook` handler.
final class WebhookProcessingTests: DatabaseTestCase {
    var processor: WebhookProcessor!
    var tasks: TaskStore!
    static let projectID = "9d8c7b6a-5f4e-4d3c-8b2a-190817263544"

    override func setUp() async throws {
        try await super.setUp()
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: Self.projectID, repo: "acme/orch", cloneURL: "/srv/git/orch",
            defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        let other = RepositorySettings(
            project: "SITE", planeProjectID: "11111111-2222-3333-4444-555555555555", repo: "acme/site",
            cloneURL: "/srv/git/site",
            defaultBranch: "main", testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        processor = WebhookProcessor(pool: database.pool, repos: [repo, other], labels: LabelSettings())
        tasks = TaskStore(pool: database.pool)
    }

    /// Stores a body as a delivery (not yet processed); returns its id.
    private func store(_ source: String, _ event: String, _ body: [UInt8]) async throws -> Int64 {
        let outcome = try await WebhookStore(pool: database.pool).record(
            .init(
                source: WebhookSource(rawValue: source)!, deliveryID: UUID().uuidString,
                bodySHA256: WebhookSignature.sha256Hex(body + Array(UUID().uuidString.utf8)),
                event: event, payload: JSONB(text: String(decoding: body, as: UTF8.self))))
        guard case .accepted(let id, _) = outcome else { throw TestSetupError("not accepted: \(outcome)") }
        return id
    }

    /// A stored delivery's status and reason.
    private func outcome(of id: Int64) async throws -> (String, String?) {
        let row = try await database.pool.query("SELECT status, reason FROM webhook_deliveries WHERE id = $1", [id])
            .first!
        return (try row.decode("status"), try row.decode("reason"))
    }

    /// Stores a body as a delivery and runs its processing; returns the delivery's status and reason.
    @discardableResult
    private func deliver(_ source: String, _ event: String, _ body: [UInt8]) async throws -> (String, String?) {
        let id = try await store(source, event, body)
        try await processor.process(deliveryID: id, logger: testLogger)
        // A second run (a redelivered job) changes nothing.
        try await processor.process(deliveryID: id, logger: testLogger)
        return try await outcome(of: id)
    }

    private func fixture(_ path: String) throws -> [UInt8] {
        try WebhookTests.fixture(path)
    }

    func testPlaneIssueCreatesTheTaskFromItsLabels() async throws {
        let (status, reason) = try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        XCTAssertEqual(status, "processed")
        XCTAssertEqual(reason, "ORCH-98 created")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.title, "Crash when saving a draft")
        XCTAssertEqual(task?.repo, "acme/orch")
        // The description's "Depends on ORCH-97": it waits, blocked, for a task that does not exist yet.
        XCTAssertEqual(
            task?.state, TaskState(stage: .analysis, status: .blocked, track: .bug, auto: true),
            "label bug → bug track; auto → auto")
        let waitsFor = try await tasks.dependencies(workItem: "ORCH-98").map(\.dependsOn)
        XCTAssertEqual(waitsFor, ["ORCH-97"])
        XCTAssertEqual(TaskTrack.bug.stages.contains(.architecture), false)
        // An update keeps the task current without moving its stage.
        let update = try await deliver("plane", "issue.updated", try fixture("plane/issue_updated_state.json"))
        XCTAssertEqual(update.1, "ORCH-98 updated")
        let count = try await database.pool.query("SELECT count(*) AS n FROM tasks").first!.decode("n", as: Int.self)
        XCTAssertEqual(count, 1)
    }

    /// With `ORCH_AUTO_LABELS_ENABLED=0` the `auto` and `bug` labels drive nothing: full track,
    /// approval after each agent stage. STOP still cancels.
    func testLabelsSwitchedOffLeaveEveryTaskOnTheFullTrackWithApproval() async throws {
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: Self.projectID, repo: "acme/orch", cloneURL: "/srv/git/orch",
            defaultBranch: "main", testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        processor = WebhookProcessor(pool: database.pool, repos: [repo], labels: LabelSettings(enabled: false))
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.track, .full)
        XCTAssertEqual(task?.state.auto, false)
        let (_, reason) = try await deliver(
            "plane", "issue.updated", try fixture("plane/issue_updated_stop_label.json"))
        XCTAssertEqual(reason, "ORCH-98 cancelled by the STOP label")
    }

    /// A repository out of the task-dependency gate's scope (`gates: {task_deps: false}` or left
    /// out of `ORCH_TASK_DEPS_REPOS`): its description's `Depends on` lines make no edge and the
    /// task is not blocked.
    func testARepositoryOutOfTheDependencyScopeTakesNoEdgesFromItsDescription() async throws {
        var repo = RepositorySettings(
            project: "ORCH", planeProjectID: Self.projectID, repo: "acme/orch", cloneURL: "/srv/git/orch",
            defaultBranch: "main", testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        repo.gates.outOfScope = [.taskDependencies]
        processor = WebhookProcessor(pool: database.pool, repos: [repo], labels: LabelSettings())
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .active, "not blocked by the description's Depends on ORCH-97")
        let edges = try await tasks.dependencies(workItem: "ORCH-98")
        XCTAssertEqual(edges.count, 0)
    }

    func testStopLabelCancelsTheTask() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        let (_, reason) = try await deliver(
            "plane", "issue.updated", try fixture("plane/issue_updated_stop_label.json"))
        XCTAssertEqual(reason, "ORCH-98 cancelled by the STOP label")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .cancelled)
        let history = try await tasks.history(workItem: "ORCH-98")
        // (It was blocked first: the fixture's description depends on ORCH-97.)
        XCTAssertEqual(history.map(\.event), ["blocked", "cancel"], "the redelivered STOP did not cancel twice")
    }

    static let issueID = "c0ffee00-1111-4222-8333-444455556666"

    /// ORCH-98 (full track, no auto) past analysis: architecture awaits approval. Returns when it
    /// began to wait (the database's time of that event).
    @discardableResult
    private func awaitingTask() async throws -> Date {
        _ = try await tasks.upsert(
            workItem: "ORCH-98", repo: "acme/orch", title: "t", description: "", labels: [], track: .full, auto: false,
            planeIssueID: Self.issueID, planeProjectID: Self.projectID, planeState: nil)
        try await tasks.apply(.stagePassed, workItem: "ORCH-98", actor: "system")
        return try await tasks.history(workItem: "ORCH-98").last!.at
    }

    /// A Plane fixture with fields of `data` replaced (or removed, for keys in `removing`) and of
    /// the top level replaced.
    private func plane(
        _ path: String, data changes: [String: Any] = [:], removing: [String] = [], top: [String: Any] = [:]
    ) throws -> [UInt8] {
        var object = try JSONSerialization.jsonObject(with: Data(try fixture(path))) as! [String: Any]
        var data = object["data"] as! [String: Any]
        for (key, value) in changes { data[key] = value }
        for key in removing { data[key] = nil }
        object["data"] = data
        for (key, value) in top { object[key] = value }
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    /// A `comment_created.json` comment saying `text`, written at `writtenAt`.
    private func comment(_ text: String, writtenAt: Date, action: String = "created") throws -> [UInt8] {
        try plane(
            "plane/comment_created.json",
            data: ["comment_html": "<p>\(text)</p>", "created_at": writtenAt.timestampText], top: ["action": action])
    }

    func testApproveCommentAdvancesAnAwaitingTask() async throws {
        let waitingSince = try await awaitingTask()
        let (status, reason) = try await deliver(
            "plane", "issue_comment.created", try comment("/approve", writtenAt: waitingSince))
        XCTAssertEqual(status, "processed")
        XCTAssertEqual(reason, "/approve applied to ORCH-98")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state, TaskState(stage: .architecture, status: .active, track: .full, auto: false))
        let value1 = try await tasks.history(workItem: "ORCH-98").last?.actor
        XCTAssertEqual(value1, "plane:dana")
    }

    /// `/agent <text>` (issue #15 item 2): while the task awaits approval after an agent stage,
    /// that stage runs again with the text as its feedback; otherwise it is refused, saying why.
    func testAgentCommentRunsTheStageAgainWithItsText() async throws {
        let waitingSince = try await awaitingTask()
        let empty = try await deliver("plane", "issue_comment.created", try comment("/agent", writtenAt: waitingSince))
        XCTAssertEqual(empty.1, "/agent refused: say what the agent should do: /agent <text>")
        let (status, reason) = try await deliver(
            "plane", "issue_comment.created",
            try comment("/agent Cover the offline case in the spec.", writtenAt: waitingSince))
        XCTAssertEqual(status, "processed")
        XCTAssertEqual(reason, "/agent applied to ORCH-98")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state, TaskState(stage: .analysis, status: .active, track: .full, auto: false))
        let job = try await database.pool.query(
            "SELECT payload->>'stage' AS stage, payload->>'feedback' AS feedback FROM jobs WHERE kind = 'run_stage' ORDER BY id DESC LIMIT 1"
        ).first
        XCTAssertEqual(try job?.decode("stage", as: String.self), "analysis")
        XCTAssertEqual(
            try job?.decode("feedback", as: String?.self),
            "A person asked on the work item (dana): Cover the offline case in the spec.")
        let event = try await tasks.history(workItem: "ORCH-98").last?.event
        XCTAssertEqual(event, "agent_feedback")

        // Now the stage runs: the request is kept for the stage's job, which runs it again when it ends.
        let running = try await deliver("plane", "issue_comment.created", try comment("/agent more", writtenAt: Date()))
        XCTAssertEqual(running.1, "/agent kept for ORCH-98: its analysis stage runs again with it")
        let kept = try await tasks.pendingFeedback(workItem: "ORCH-98", sources: ["plane_agent"]).map(\.body)
        XCTAssertEqual(kept, ["more"])
        // Past the agent stages there is nothing for it to do.
        try await tasks.apply(.cancel, workItem: "ORCH-98", actor: "test")
        let cancelled = try await deliver("plane", "issue_comment.created", try comment("/agent x", writtenAt: Date()))
        XCTAssertEqual(
            cancelled.1,
            "/agent refused: it applies to an agent stage that runs or awaits approval; ORCH-98 is cancelled in analysis"
        )
    }

    /// Issue #15 item 8: with `allowed_actors` only the users it names (Plane id or email) create
    /// tasks and give commands; anything else is stored `ignored` with the reason and changes nothing.
    func testOnlyAllowedActorsCreateTasksAndGiveCommands() async throws {
        func only(_ allowed: [String]) -> WebhookProcessor {
            let repo = RepositorySettings(
                project: "ORCH", planeProjectID: Self.projectID, repo: "acme/orch", cloneURL: "/srv/git/orch",
                defaultBranch: "main", testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil,
                allowedActors: allowed)
            return WebhookProcessor(pool: database.pool, repos: [repo], labels: LabelSettings())
        }
        processor = only(["lee@example.com"])
        let refused = try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        XCTAssertEqual(refused.0, "ignored")
        XCTAssertEqual(refused.1, "dana (dana@example.com) is not in allowed_actors of acme/orch")
        let none = try await tasks.task(workItem: "ORCH-98")
        XCTAssertNil(none, "no task for a work item written by someone else")
        // An event that names nobody is refused too (fail closed).
        let anonymous = try plane("plane/issue_created.json", top: ["activity": [String: Any]()])
        let unnamed = try await deliver("plane", "issue.created", anonymous)
        XCTAssertEqual(unnamed.1, "the event names no actor and acme/orch has allowed_actors")

        // Commands: the comment fixture's actor is dana by id (7e7e…), with no email.
        let waitingSince = try await awaitingTask()
        processor = only(["lee@example.com"])
        let command = try await deliver(
            "plane", "issue_comment.created", try comment("/approve", writtenAt: waitingSince))
        XCTAssertEqual(command.0, "ignored")
        XCTAssertEqual(
            command.1,
            "/approve not applied: dana (7e7e7e7e-8f8f-4a9a-8b0b-1c1c1c1c1c1c) is not in allowed_actors of acme/orch")
        let waiting = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(waiting?.state.status, .awaitingApproval, "the refused /approve changed nothing")
        processor = only(["7e7e7e7e-8f8f-4a9a-8b0b-1c1c1c1c1c1c"])
        let approved = try await deliver(
            "plane", "issue_comment.created", try comment("/approve", writtenAt: waitingSince))
        XCTAssertEqual(approved.1, "/approve applied to ORCH-98")

        processor = only(["DANA@example.com"])  // emails compare case-insensitively
        let updated = try await deliver("plane", "issue.updated", try fixture("plane/issue_updated_state.json"))
        XCTAssertEqual(updated.1, "ORCH-98 updated")
    }

    /// Review feedback (issue #15 item 2): Gitea reviews and PR comments on a task's pull request
    /// are kept for its merge stage (an approval is recorded as applied); the orchestrator's own,
    /// edits, other PRs and people `allowed_actors` does not name are not.
    func testGiteaReviewsAndCommentsOnTheTasksPullRequestAreKeptForItsMerge() async throws {
        _ = try await tasks.upsert(
            workItem: "ORCH-5", repo: "acme/orch", title: "t", description: "", labels: ["auto"], track: .full,
            auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
        try await database.pool.withConnection {
            try await TaskStore.recordOwnPullRequest(
                workItem: "ORCH-5", number: 7, headSHA: String(repeating: "a", count: 40), on: $0)
        }
        func review(_ content: String, number: Int = 7, login: String = "dana") throws -> [UInt8] {
            Array(
                try JSONSerialization.data(withJSONObject: [
                    "action": "reviewed", "number": number,
                    "review": ["type": "pull_request_review_rejected", "content": content],
                    "repository": ["full_name": "acme/orch", "id": 1],
                    "sender": ["login": login, "email": "\(login)@example.com"],
                ]))
        }
        func comment(_ body: String, action: String = "created", pull: Bool = true) throws -> [UInt8] {
            Array(
                try JSONSerialization.data(withJSONObject: [
                    "action": action, "is_pull": pull,
                    "issue": ["number": 7, "pull_request": pull ? ["merged": false] as Any : NSNull()] as [String: Any],
                    "comment": ["body": body, "user": ["login": "lee", "email": "lee@example.com"]],
                    "repository": ["full_name": "acme/orch", "id": 1], "sender": ["login": "lee"],
                ]))
        }
        let rejected = try await deliver("gitea", "pull_request_rejected", try review("Handle the empty draft."))
        XCTAssertEqual(rejected.0, "processed")
        XCTAssertEqual(rejected.1, "ORCH-5: changes_requested on PR #7 kept for its merge stage")
        let commented = try await deliver("gitea", "issue_comment", try comment("Also add a test for it."))
        XCTAssertEqual(commented.1, "ORCH-5: comment on PR #7 kept for its merge stage")
        let approved = try await deliver("gitea", "pull_request_approved", try review("LGTM"))
        XCTAssertEqual(approved.1, "ORCH-5: PR #7 approved by dana (dana@example.com)")

        let edited = try await deliver("gitea", "issue_comment", try comment("typo", action: "edited"))
        XCTAssertEqual(edited.1, "edited comment: not feedback")
        let own = try await deliver("gitea", "issue_comment", try comment("<!-- orchestrator -->\nstatus"))
        XCTAssertEqual(own.1, "the orchestrator's own comment")
        let otherPR = try await deliver("gitea", "pull_request_rejected", try review("no", number: 8))
        XCTAssertEqual(otherPR.1, "PR #8 of acme/orch is not a task's pull request")
        let issue = try await deliver("gitea", "issue_comment", try comment("hi", pull: false))
        XCTAssertEqual(issue.1, "comment on issue #7, not a pull request")

        let pending = try await tasks.pendingFeedback(workItem: "ORCH-5")
        XCTAssertEqual(pending.map(\.body), ["Handle the empty draft.", "Also add a test for it."])
        XCTAssertEqual(pending.map(\.kind), [.changesRequested, .comment])
        XCTAssertEqual(pending.first?.author, "dana (dana@example.com)")
        let approvals = try await database.pool.query(
            "SELECT count(*) AS n FROM task_feedback WHERE kind = 'approved' AND applied_at IS NOT NULL"
        ).first?.decode("n", as: Int.self)
        XCTAssertEqual(approvals, 1, "an approval is recorded")

        // Someone allowed_actors does not name is not heard.
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: Self.projectID, repo: "acme/orch", cloneURL: "/srv/git/orch",
            defaultBranch: "main", testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil,
            allowedActors: ["lee"])
        processor = WebhookProcessor(pool: database.pool, repos: [repo], labels: LabelSettings())
        let stranger = try await deliver("gitea", "pull_request_rejected", try review("Rewrite it all.", login: "eve"))
        XCTAssertEqual(stranger.0, "ignored")
        XCTAssertEqual(stranger.1, "eve (eve@example.com) is not in allowed_actors of acme/orch")
        let listed = try await deliver("gitea", "issue_comment", try comment("One more thing."))
        XCTAssertEqual(listed.0, "processed", "lee is named by login")
        let count = try await tasks.pendingFeedback(workItem: "ORCH-5").count
        XCTAssertEqual(count, 3)
    }

    func testOwnCommentsAndOtherProjectsAreSkipped() async throws {
        let own = Array(
            #"{"event":"issue_comment","action":"created","data":{"id":"x","issue":"i","project":"p","comment_html":"<p>Stage done</p><!-- orchestrator -->"}}"#
                .utf8)
        let ownResult = try await deliver("plane", "issue_comment.created", own)
        XCTAssertEqual(ownResult.0, "ignored")
        let elsewhere = Array(
            #"{"event":"issue","action":"created","data":{"id":"y","sequence_id":5,"project":"another","name":"n"}}"#
                .utf8)
        let result = try await deliver("plane", "issue.created", elsewhere)
        XCTAssertEqual(result.0, "ignored")
        XCTAssertEqual(result.1, "Plane project another is not configured (repos[].plane_project_id)")
        let count = try await database.pool.query("SELECT count(*) AS n FROM tasks").first!.decode("n", as: Int.self)
        XCTAssertEqual(count, 0)
    }

    /// What the development stage records when it opens (or finds) the task's pull request.
    private func openPullRequest(
        _ number: Int = 42, head: String = "2222222222222222222222222222222222222222"
    ) async throws {
        try await database.pool.withConnection { connection in
            try await TaskStore.recordOwnPullRequest(workItem: "ORCH-98", number: number, headSHA: head, on: connection)
        }
    }

    func testGiteaPullRequestRecordsThePRFactsOnTheTask() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        try await openPullRequest()
        let (status, _) = try await deliver("gitea", "pull_request", try fixture("gitea/pull_request_merged.json"))
        XCTAssertEqual(status, "processed")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.prNumber, 42)
        XCTAssertEqual(task?.headSHA, "2222222222222222222222222222222222222222")
        XCTAssertEqual(task?.mergeSHA, "3333333333333333333333333333333333333333")
    }

    /// A fixture with some top-level fields replaced (a later or older status, another repo).
    private func fixture(_ path: String, replacing changes: [String: Any]) throws -> [UInt8] {
        var object = try JSONSerialization.jsonObject(with: Data(try fixture(path))) as! [String: Any]
        for (key, value) in changes { object[key] = value }
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    func testGiteaStatusesAndPushesKeepTheTaskCIFactsCurrentInAnyOrder() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        // The status for the PR head arrives before the pull request itself: kept, then counted.
        let early = try await deliver("gitea", "status", try fixture("gitea/status_success.json"))
        XCTAssertEqual(early.0, "processed")
        XCTAssertEqual(early.1, "ci/build success on 222222222222: no task has this commit yet (status kept)")
        try await openPullRequest()
        try await deliver("gitea", "pull_request", try fixture("gitea/pull_request_opened.json"))
        var task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headSHA, "2222222222222222222222222222222222222222")
        XCTAssertEqual(task?.headCIState, .success)

        // A push moves the head; CI of the new head is unknown until its statuses come.
        let push = try await deliver("gitea", "push", try fixture("gitea/push.json"))
        XCTAssertEqual(push.1, "ORCH-98: branch pushed, head 444444444444")
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headSHA, "4444444444444444444444444444444444444444")
        XCTAssertNil(task?.headCIState)
        let failure = try await deliver("gitea", "status", try fixture("gitea/status_failure.json"))
        XCTAssertEqual(failure.1, "ci/build failure on 444444444444: ORCH-98 head CI failure")
        // An older status of the same context arriving late changes nothing; another context's
        // pending does not hide the failure.
        try await deliver(
            "gitea", "status", try fixture("gitea/status_failure.json", replacing: ["id": 800, "state": "success"]))
        try await deliver(
            "gitea", "status",
            try fixture("gitea/status_failure.json", replacing: ["id": 903, "context": "ci/lint", "state": "pending"]))
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headCIState, .failure)
        // A newer build of ci/build passes: the head is pending on ci/lint, then green.
        try await deliver(
            "gitea", "status", try fixture("gitea/status_failure.json", replacing: ["id": 904, "state": "success"]))
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headCIState, .pending)
        try await deliver(
            "gitea", "status",
            try fixture("gitea/status_failure.json", replacing: ["id": 905, "context": "ci/lint", "state": "success"]))
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headCIState, .success)

        // The merge commit's CI is tracked separately.
        try await deliver("gitea", "pull_request", try fixture("gitea/pull_request_merged.json"))
        let merged = try await deliver(
            "gitea", "status",
            try fixture(
                "gitea/status_success.json", replacing: ["id": 906, "sha": "3333333333333333333333333333333333333333"]))
        XCTAssertEqual(merged.1, "ci/build success on 333333333333: ORCH-98 merge CI success")
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.mergeCIState, .success)
    }

    func testGiteaEventsForUnconfiguredRepositoriesOrOtherBranchesAreRecordedWithTheReason() async throws {
        let otherRepo = try await deliver(
            "gitea", "status",
            try fixture("gitea/status_success.json", replacing: ["repository": ["full_name": "someone/else"]]))
        XCTAssertEqual(otherRepo.0, "ignored")
        XCTAssertEqual(otherRepo.1, "repository someone/else is not configured (repos[].repo)")
        let main = try await deliver(
            "gitea", "push", try fixture("gitea/push.json", replacing: ["ref": "refs/heads/main"]))
        XCTAssertEqual(main.1, "push to refs/heads/main: not a task branch")
        let noTask = try await deliver("gitea", "push", try fixture("gitea/push.json"))
        XCTAssertEqual(noTask.0, "ignored")
        XCTAssertEqual(noTask.1, "no task ORCH-98 in acme/orch")
        let statuses = try await database.pool.query("SELECT count(*) AS n FROM commit_statuses").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(statuses, 0, "nothing kept for an unconfigured repository")
    }

    /// A `pull_request` fixture with fields of `pull_request` (and the top level) replaced.
    private func pullRequest(_ path: String, pull changes: [String: Any], top: [String: Any] = [:]) throws -> [UInt8] {
        var object = try JSONSerialization.jsonObject(with: Data(try fixture(path))) as! [String: Any]
        var pull = object["pull_request"] as! [String: Any]
        for (key, value) in changes { pull[key] = value }
        object["pull_request"] = pull
        for (key, value) in top { object[key] = value }
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    func testOnlyTheTasksOwnPullRequestFromItsOwnRepositoryUpdatesTheTask() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        // Before the orchestrator opened or found the PR, no PR binds itself to the task.
        let early = try await deliver("gitea", "pull_request", try fixture("gitea/pull_request_opened.json"))
        XCTAssertEqual(early.0, "ignored")
        XCTAssertEqual(early.1, "PR #42 is not ORCH-98's pull request (none opened yet)")
        try await openPullRequest()

        // A fork's PR with branch orch/ORCH-98 (its head repository is another one).
        let forkHead: [String: Any] = ["ref": "orch/ORCH-98", "sha": String(repeating: "f", count: 40), "repo_id": 99]
        let fork = try await deliver(
            "gitea", "pull_request",
            try pullRequest(
                "gitea/pull_request_opened.json", pull: ["head": forkHead, "updated_at": "2026-06-01T09:30:00Z"],
                top: ["number": 43]))
        XCTAssertEqual(fork.0, "ignored")
        XCTAssertEqual(fork.1, "PR #43 comes from repository id 99, not acme/orch (a fork)")
        let forkSameNumber = try await deliver(
            "gitea", "pull_request",
            try pullRequest(
                "gitea/pull_request_opened.json", pull: ["head": forkHead, "updated_at": "2026-06-01T09:30:00Z"]))
        XCTAssertEqual(forkSameNumber.0, "ignored", "a head in another repository never binds, whatever the number")

        // A PR with branch orch/ORCH-98 in another configured repository.
        let elsewhere = try await deliver(
            "gitea", "pull_request",
            try pullRequest(
                "gitea/pull_request_opened.json",
                pull: ["head": ["ref": "orch/ORCH-98", "sha": String(repeating: "e", count: 40), "repo_id": 13]],
                top: ["repository": ["id": 13, "full_name": "acme/site"], "number": 7]))
        XCTAssertEqual(elsewhere.0, "ignored")
        XCTAssertEqual(elsewhere.1, "no task ORCH-98 in acme/site")

        // Another PR number in the right repository.
        let another = try await deliver(
            "gitea", "pull_request",
            try pullRequest(
                "gitea/pull_request_opened.json", pull: ["updated_at": "2026-06-01T09:40:00Z"], top: ["number": 44]))
        XCTAssertEqual(another.1, "PR #44 is not ORCH-98's pull request (#42)")

        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.prNumber, 42)
        XCTAssertEqual(task?.headSHA, "2222222222222222222222222222222222222222", "nothing rebound the task")
    }

    func testAReplayedOrLateDeliveryNeverRewindsTheHead() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        try await openPullRequest()
        let newer = String(repeating: "5", count: 40)
        let synchronized = try await deliver(
            "gitea", "pull_request",
            try pullRequest(
                "gitea/pull_request_opened.json",
                pull: [
                    "head": ["ref": "orch/ORCH-98", "sha": newer, "repo_id": 12], "updated_at": "2026-06-01T09:50:00Z",
                ],
                top: ["action": "synchronized"]))
        XCTAssertEqual(synchronized.0, "processed")
        // The older "opened" delivery arrives late (or is replayed): the head stays.
        let late = try await deliver("gitea", "pull_request", try fixture("gitea/pull_request_opened.json"))
        XCTAssertEqual(late.0, "ignored")
        XCTAssertTrue(late.1?.contains("stale or replayed") == true, late.1 ?? "")
        var task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headSHA, newer)

        // A push that does not continue the known head (a replay of the earlier push) is ignored.
        let replayedPush = try await deliver("gitea", "push", try fixture("gitea/push.json"))
        XCTAssertEqual(replayedPush.0, "ignored")
        XCTAssertTrue(replayedPush.1?.contains("does not continue the known head") == true, replayedPush.1 ?? "")
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headSHA, newer)
        // One that does continue it moves the head.
        let next = String(repeating: "6", count: 40)
        let push = try await deliver(
            "gitea", "push", try fixture("gitea/push.json", replacing: ["before": newer, "after": next]))
        XCTAssertEqual(push.0, "processed")
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.headSHA, next)
    }

    // MARK: Commands bound to what they answer

    func testAnEditedCommentIsNotACommand() async throws {
        let waitingSince = try await awaitingTask()
        let edited = try await deliver(
            "plane", "issue_comment.updated", try comment("/approve", writtenAt: waitingSince, action: "updated"))
        XCTAssertEqual(edited.0, "processed")
        XCTAssertEqual(edited.1, "edited comment: not a command")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .awaitingApproval)
        let history = try await tasks.history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(history, ["stage_passed"])
    }

    func testALateApproveIsRefusedWithTheReason() async throws {
        let architectureWait = try await awaitingTask()

        // Architecture is approved by other means and passes; development awaits. A comment written
        // while architecture awaited, or while it ran, arrives only now: neither starts development.
        try await tasks.apply(.approved, workItem: "ORCH-98", actor: "admin")
        let architectureRan = try await tasks.history(workItem: "ORCH-98").last!.at
        try await tasks.apply(.stagePassed, workItem: "ORCH-98", actor: "system")
        let late = try await deliver(
            "plane", "issue_comment.created", try comment("/approve", writtenAt: architectureWait))
        XCTAssertEqual(
            late.1,
            "/approve refused: cannot apply 'approved' to a task in development/awaiting_approval (full track): "
                + "the approval is for architecture, but the task awaits approval of development")
        let during = try await deliver(
            "plane", "issue_comment.created", try comment("/approve", writtenAt: architectureRan))
        XCTAssertEqual(
            during.1,
            "/approve refused: written at \(architectureRan.timestampText), while the task was in "
                + "architecture/active, not awaiting approval")
        // The fixture's comment was written on 2026-06-01, before this task existed by the
        // database's clock: it cannot be placed, and answers only a task's first wait — not this one.
        let early = try await deliver("plane", "issue_comment.created", try fixture("plane/comment_created.json"))
        XCTAssertEqual(early.0, "processed")
        XCTAssertEqual(
            early.1,
            "/approve refused: written at 2026-06-01T09:10:00.000001Z, while the task was in its first stage "
                + "(nothing awaited approval)")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(
            task?.state, TaskState(stage: .development, status: .awaitingApproval, track: .full, auto: false))
        let history = try await tasks.history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(history, ["stage_passed", "approved", "stage_passed"])
    }

    /// A comment older than the task's whole history by the database's clock (Plane's clock
    /// behind, or the shared example payload) approves the task's first wait while it lasts.
    func testACommentOlderThanTheTaskApprovesOnlyItsFirstWait() async throws {
        _ = try await awaitingTask()
        let early = try await deliver("plane", "issue_comment.created", try fixture("plane/comment_created.json"))
        XCTAssertEqual(early.1, "/approve applied to ORCH-98")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .active)
        XCTAssertEqual(task?.state.stage, .architecture)
    }

    func testACommandAndItsDeliveryCommitTogether() async throws {
        _ = try await tasks.upsert(
            workItem: "ORCH-98", repo: "acme/orch", title: "t", description: "", labels: [], track: .full, auto: false,
            planeIssueID: Self.issueID, planeProjectID: Self.projectID, planeState: nil)
        try await tasks.apply(.stageFailed(final: true), workItem: "ORCH-98", actor: "system")
        let id = try await store("plane", "issue_comment.created", try comment("/retry", writtenAt: Date()))
        // Marking the delivery processed fails (as a crash at that point would end it): the retry
        // it was applied with is rolled back, so the next run applies it exactly once.
        try await database.pool.query(
            """
            CREATE FUNCTION refuse_finish() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the delivery cannot be finished now'; END $$
            """)
        try await database.pool.query(
            "CREATE TRIGGER refuse_finish BEFORE UPDATE ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION refuse_finish()"
        )
        do {
            try await processor.process(deliveryID: id, logger: testLogger)
            XCTFail("expected the finish to fail")
        } catch let error as PostgresError {
            XCTAssertTrue(error.message.contains("the delivery cannot be finished now"), "\(error)")
        }
        var task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .failed, "the retry was rolled back with the finish")
        let pending = try await outcome(of: id)
        XCTAssertEqual(pending.0, "pending")

        try await database.pool.query("DROP TRIGGER refuse_finish ON webhook_deliveries")
        try await processor.process(deliveryID: id, logger: testLogger)
        try await processor.process(deliveryID: id, logger: testLogger)
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .active)
        let done = try await outcome(of: id)
        XCTAssertEqual(done.0, "processed")
        XCTAssertEqual(done.1, "/retry applied to ORCH-98")
        var history = try await tasks.history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(history, ["stage_failed_final", "retry"])

        // Another run of the job that got as far as applying it, once the delivery is finished:
        // its transition rolls back instead of applying the command a second time.
        try await tasks.apply(.stageFailed(final: true), workItem: "ORCH-98", actor: "system")
        do {
            try await tasks.apply(.retry, workItem: "ORCH-98", actor: "plane:dana") { connection in
                try await WebhookStore.finish(id: id, status: .processed, reason: "again", on: connection)
            }
            XCTFail("expected DeliveryAlreadyFinished")
        } catch let error as DeliveryAlreadyFinished {
            XCTAssertEqual(error.deliveryID, id)
        }
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .failed)
        history = try await tasks.history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(history, ["stage_failed_final", "retry", "stage_failed_final"])
        let still = try await outcome(of: id)
        XCTAssertEqual(still.1, "/retry applied to ORCH-98", "the generic finish never overwrites")
    }

    // MARK: Ordered, partial work-item updates

    /// The stored `updated_at` of ORCH-98's work item.
    private func planeStamp() async throws -> String? {
        try await database.pool.query("SELECT plane_updated_at FROM tasks WHERE work_item = 'ORCH-98'").first!
            .decode("plane_updated_at", as: Date?.self)?.timestampText
    }

    private func labels(_ names: String...) -> [[String: Any]] {
        names.map { ["id": UUID().uuidString.lowercased(), "name": $0] }
    }

    func testWorkItemUpdatesApplyOnlyWhenNewer() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        let created = try await planeStamp()
        XCTAssertEqual(created, "2026-06-01T08:30:12.345690Z")
        // "Remove auto" (newer) is processed before "add auto" (older): auto stays off, and the
        // title does not regress.
        let removeAuto = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_state.json",
                data: ["labels": labels("bug"), "name": "Renamed", "updated_at": "2026-06-01T09:00:00.000002Z"]))
        XCTAssertEqual(removeAuto.1, "ORCH-98 updated")
        let addAuto = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_state.json",
                data: [
                    "labels": labels("bug", "auto"), "name": "Older title", "updated_at": "2026-06-01T09:00:00.000001Z",
                ]))
        XCTAssertEqual(addAuto.0, "ignored")
        XCTAssertEqual(
            addAuto.1,
            "stale: work item updated_at 2026-06-01T09:00:00.000001Z is not newer than 2026-06-01T09:00:00.000002Z")
        var task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.auto, false)
        XCTAssertEqual(task?.labels, ["bug"])
        XCTAssertEqual(task?.title, "Renamed")
        // The same stamp again (Plane resending the same version) is not newer either.
        let again = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_state.json",
                data: ["labels": labels("bug", "auto"), "updated_at": "2026-06-01T09:00:00.000002Z"]))
        XCTAssertEqual(again.0, "ignored")

        // The real partial fixture: no description fields, so the description stays.
        let state = try await deliver("plane", "issue.updated", try fixture("plane/issue_updated_state.json"))
        XCTAssertEqual(state.1, "ORCH-98 updated")
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.description, "Steps to reproduce: open a draft, press save. Depends on ORCH-97")
        XCTAssertEqual(task?.title, "Crash when saving a draft")
        XCTAssertEqual(task?.state.auto, true)
        let planeState = try await database.pool.query("SELECT plane_state FROM tasks").first!.decode(
            "plane_state", as: String.self)
        XCTAssertEqual(planeState, "In Progress")

        // Microseconds order: one older by 1 µs is stale, one newer by 1 µs applies.
        let older = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_state.json",
                data: ["name": "Stale title", "updated_at": "2026-06-01T09:02:40.100199Z"]))
        XCTAssertEqual(older.0, "ignored")
        let newer = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_state.json",
                data: ["name": "Newest title", "updated_at": "2026-06-01T09:02:40.100201Z"]))
        XCTAssertEqual(newer.0, "processed")

        // Without updated_at (order unknown) an update applies, fields it lacks stay, and the
        // stored stamp does not move.
        let unstamped = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_stop_label.json", data: ["labels": labels("bug")], removing: ["name"]))
        XCTAssertEqual(unstamped.1, "ORCH-98 updated")
        task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.title, "Newest title")
        XCTAssertEqual(task?.state.auto, false)
        XCTAssertEqual(task?.description, "Steps to reproduce: open a draft, press save. Depends on ORCH-97")
        let kept = try await planeStamp()
        XCTAssertEqual(kept, "2026-06-01T09:02:40.100201Z")
        XCTAssertEqual(task?.state.stage, .analysis, "updates never move the stage")
    }

    func testAnOlderUpdateRacingTheTasksCreationDoesNotOverwriteIt() async throws {
        let upsert: @Sendable (TaskStore) async throws -> Void = { tasks in
            try await tasks.upsert(
                workItem: "ORCH-98", repo: "acme/orch", title: "Older", description: nil, labels: nil, track: .full,
                auto: nil,
                planeIssueID: Self.issueID, planeProjectID: Self.projectID, planeState: nil,
                planeUpdatedAt: Date(timestamp: "2026-06-01T09:00:00Z"))
        }
        let tasks: TaskStore = tasks
        let pool: ConnectionPool = database.pool
        let older = try await pool.withTransaction { connection in
            // A newer delivery creates the task but has not committed when the older one checks.
            try await connection.query(
                """
                INSERT INTO tasks (work_item, title, plane_issue_id, plane_updated_at)
                VALUES ('ORCH-98', 'Newer', $1, '2026-06-01T10:00:00Z')
                """, [Self.issueID])
            let older = Task { try await upsert(tasks) }
            let blocked = try await waitUntil(timeout: .seconds(20)) {
                try await pool.query(
                    """
                    SELECT count(*) AS n FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO tasks%'
                    """
                ).first!.decode("n", as: Int.self) == 1
            }
            XCTAssertTrue(blocked, "the older delivery waits on the newer one's row")
            return older
        }
        do {
            try await older.value
            XCTFail("expected the older update to be refused")
        } catch let error as WorkItemUpdateRefused {
            XCTAssertEqual(
                error.description,
                "stale: work item updated_at 2026-06-01T09:00:00.000000Z is not newer than 2026-06-01T10:00:00.000000Z")
        }
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.title, "Newer")
    }

    func testTheStopLabelCancelsWhateverItsCaseOrOrder() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        try await deliver("plane", "issue.updated", try fixture("plane/issue_updated_state.json"))
        // Older than what the task holds, lower-case "Stop": it still cancels, and nothing else applies.
        let stop = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_stop_label.json",
                data: ["labels": labels("bug", "Stop"), "name": "Stale title", "updated_at": "2026-06-01T09:00:00Z"]))
        XCTAssertEqual(stop.0, "processed")
        XCTAssertEqual(
            stop.1,
            "ORCH-98 cancelled by the STOP label; nothing else applied: stale: work item updated_at "
                + "2026-06-01T09:00:00.000000Z is not newer than 2026-06-01T09:02:40.100200Z")
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.state.status, .cancelled)
        XCTAssertEqual(task?.title, "Crash when saving a draft")
        // A task of another issue with label "stop" in lower case.
        let other = try await deliver(
            "plane", "issue.created",
            try plane(
                "plane/issue_created.json", data: ["id": "another-issue", "sequence_id": 99, "labels": labels("stop")]))
        XCTAssertEqual(other.1, "ORCH-99 cancelled by the STOP label")
        let cancelled = try await tasks.task(workItem: "ORCH-99")
        XCTAssertEqual(cancelled?.state.status, .cancelled)
    }

    // MARK: One task per Plane issue

    func testAPlaneIssueNeverGetsASecondTask() async throws {
        try await deliver("plane", "issue.created", try fixture("plane/issue_created.json"))
        // The same issue under another project key (the mapping changed): refused, not retried.
        let moved = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_state.json",
                data: ["project": "11111111-2222-3333-4444-555555555555", "updated_at": "2026-06-02T00:00:00Z"]))
        XCTAssertEqual(moved.0, "ignored")
        XCTAssertEqual(
            moved.1,
            "Plane issue \(Self.issueID) already belongs to task ORCH-98, not SITE-98 (was the project's identifier changed?)"
        )
        // Another issue claiming ORCH-98.
        let impostor = try await deliver(
            "plane", "issue.updated",
            try plane(
                "plane/issue_updated_state.json",
                data: ["id": "another-issue", "name": "Impostor", "updated_at": "2026-06-02T00:00:00Z"]))
        XCTAssertEqual(impostor.0, "ignored")
        XCTAssertEqual(impostor.1, "task ORCH-98 belongs to Plane issue \(Self.issueID), not another-issue")
        let count = try await database.pool.query("SELECT count(*) AS n FROM tasks").first!.decode("n", as: Int.self)
        XCTAssertEqual(count, 1)
        let task = try await tasks.task(workItem: "ORCH-98")
        XCTAssertEqual(task?.title, "Crash when saving a draft")
        // And the database itself refuses a second task for the issue.
        do {
            try await database.pool.query(
                "INSERT INTO tasks (work_item, plane_issue_id) VALUES ('SITE-98', $1)", [Self.issueID])
            XCTFail("expected a unique violation")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
    }
}
