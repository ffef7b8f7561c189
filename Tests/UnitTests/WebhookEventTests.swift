import Foundation
import Store
import XCTest

@testable import Workers

/// The webhook event models, without a database: what a body decodes into, and how a body that
/// does not decode is refused (the message names the field, as the 400 answer does).
final class WebhookEventTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/fixtures")

    private func fixture(_ path: String) throws -> Data {
        try Data(contentsOf: Self.fixtures.appendingPathComponent(path))
    }

    private func decode(_ source: WebhookSource, _ body: String, gitea: String? = nil) throws -> WebhookEvent {
        try WebhookEvent.decode(source: source, giteaEvent: gitea, body: Data(body.utf8))
    }

    private func refusal(_ source: WebhookSource, _ body: String, gitea: String? = nil) -> String? {
        do {
            _ = try decode(source, body, gitea: gitea)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testPlaneIssueFixturesDecodeWithLabelsStateAndStamp() throws {
        guard
            case .planeIssue(.written("updated", let issue, _)) = try WebhookEvent.decode(
                source: .plane, giteaEvent: nil, body: fixture("plane/issue_updated_state.json"))
        else { return XCTFail("not an issue update") }
        XCTAssertEqual(issue.id, "c0ffee00-1111-4222-8333-444455556666")
        XCTAssertEqual(issue.sequenceID, 98)
        XCTAssertEqual(issue.project, "9d8c7b6a-5f4e-4d3c-8b2a-190817263544")
        XCTAssertEqual(issue.labelNames, ["bug", "auto"])
        XCTAssertEqual(issue.stateName, "In Progress")
        XCTAssertEqual(issue.updatedAt, "2026-06-01T09:02:40.100200Z")
        XCTAssertNil(issue.descriptionStripped)

        let created = try WebhookEvent.decode(
            source: .plane, giteaEvent: nil, body: fixture("plane/issue_created.json"))
        XCTAssertEqual(created.name, "issue.created")
        XCTAssertNil(created.ignoredReason)
    }

    func testPartialPlaneFieldsAreAbsentNotRefused() throws {
        // Labels as bare strings or objects without a name, a state as a string, an absent name,
        // fields of an unexpected type: read as far as they go, never a refusal.
        let body = #"""
            {"event": "issue", "action": "updated", "data": {"id": "i", "sequence_id": 3.0, "project": "p",
             "labels": ["bug", {"id": "x"}, {"name": "AUTO"}, 7], "state": "Todo", "description_html": 5, "updated_at": null}}
            """#
        guard case .planeIssue(.written(_, let issue, _)) = try decode(.plane, body) else {
            return XCTFail("not an issue")
        }
        XCTAssertEqual(issue.sequenceID, 3)
        XCTAssertNil(issue.name)
        XCTAssertEqual(issue.labelNames, ["bug", "AUTO"])
        XCTAssertEqual(issue.stateName, "Todo")
        XCTAssertNil(issue.descriptionHTML)
        XCTAssertNil(issue.updatedAt)

        let noLabels =
            #"{"event": "issue", "action": "updated", "data": {"id": "i", "sequence_id": 3, "project": "p", "labels": "x"}}"#
        guard case .planeIssue(.written(_, let bare, _)) = try decode(.plane, noLabels) else {
            return XCTFail("not an issue")
        }
        XCTAssertNil(bare.labelNames, "no label list keeps the stored labels")
    }

    func testADeletedIssueNeedsOnlyItsID() throws {
        let event = try decode(.plane, #"{"event": "issue", "action": "deleted", "data": {"id": "gone"}}"#)
        guard case .planeIssue(.deleted("gone")) = event else { return XCTFail("\(event)") }
        XCTAssertEqual(event.name, "issue.deleted")
    }

    func testPlaneCommentCarriesTheActor() throws {
        let event = try WebhookEvent.decode(
            source: .plane, giteaEvent: nil, body: fixture("plane/comment_created.json"))
        guard case .planeComment(let comment) = event else { return XCTFail("\(event)") }
        XCTAssertEqual(event.name, "issue_comment.created")
        XCTAssertEqual(comment.comment.html, "<p>/approve</p>")
        XCTAssertEqual(comment.comment.issue, "c0ffee00-1111-4222-8333-444455556666")
        XCTAssertEqual(comment.comment.createdAt, "2026-06-01T09:10:00.000001Z")
        XCTAssertEqual(comment.actorName, "dana")
    }

    /// Gitea's review events (named by `X-Gitea-Event`) and PR comments (`issue_comment`).
    func testGiteaReviewsAndCommentsDecodeAndNameTheMissingField() throws {
        let review = #"""
            {"action": "reviewed", "number": 3, "review": {"type": "pull_request_review_rejected", "content": "Fix it"},
             "repository": {"full_name": "acme/orch", "id": 1}, "sender": {"login": "dana", "email": ""}}
            """#
        let event = try decode(.gitea, review, gitea: "pull_request_rejected")
        guard case .giteaReview(let rejected) = event else { return XCTFail("\(event)") }
        XCTAssertEqual(event.name, "pull_request_rejected")
        XCTAssertEqual(rejected.verdict, .changesRequested)
        XCTAssertEqual(rejected.review.content, "Fix it")
        XCTAssertEqual(rejected.sender, GiteaUser(login: "dana", email: nil), "an empty email is none")
        guard case .giteaReview(let approved) = try decode(.gitea, review, gitea: "pull_request_approved") else {
            return XCTFail("not a review")
        }
        XCTAssertEqual(approved.verdict, .approved)
        XCTAssertEqual(
            refusal(.gitea, #"{"number": 3, "repository": {"full_name": "a/b"}}"#, gitea: "pull_request_rejected"),
            "missing 'review'")

        let comment = #"""
            {"action": "created", "issue": {"number": 3, "pull_request": {"merged": false}},
             "comment": {"body": "Also this", "user": {"username": "lee"}}, "repository": {"full_name": "acme/orch"}}
            """#
        guard case .giteaComment(let onPull) = try decode(.gitea, comment, gitea: "issue_comment") else {
            return XCTFail("not a comment")
        }
        XCTAssertTrue(onPull.onPullRequest)
        XCTAssertEqual(onPull.author?.login, "lee", "older Gitea's username")
        let onIssue =
            #"{"action": "created", "issue": {"number": 4, "pull_request": null}, "comment": {"body": "x"}, "repository": {"full_name": "a/b"}}"#
        guard case .giteaComment(let plain) = try decode(.gitea, onIssue, gitea: "issue_comment") else {
            return XCTFail("not a comment")
        }
        XCTAssertFalse(plain.onPullRequest)
        XCTAssertEqual(
            refusal(.gitea, #"{"action": "created", "repository": {"full_name": "a/b"}}"#, gitea: "issue_comment"),
            "missing 'issue'")
    }

    func testGiteaFixturesDecode() throws {
        guard
            case .giteaPullRequest(let merged) = try WebhookEvent.decode(
                source: .gitea, giteaEvent: "pull_request", body: fixture("gitea/pull_request_merged.json"))
        else { return XCTFail("not a pull request") }
        XCTAssertTrue(merged.pullRequest.merged)
        XCTAssertEqual(merged.pullRequest.head.ref, "orch/ORCH-98")
        XCTAssertEqual(merged.pullRequest.head.repoID, 12)
        XCTAssertNotNil(merged.pullRequest.mergeCommitSHA)

        guard
            case .giteaStatus(let status) = try WebhookEvent.decode(
                source: .gitea, giteaEvent: "status", body: fixture("gitea/status_success.json"))
        else { return XCTFail("not a status") }
        XCTAssertEqual(CIState(rawValue: status.state), .success)

        guard
            case .giteaPush(let push) = try WebhookEvent.decode(
                source: .gitea, giteaEvent: "push", body: fixture("gitea/push.json"))
        else { return XCTFail("not a push") }
        XCTAssertTrue(push.ref.hasPrefix("refs/heads/"))
        XCTAssertFalse(push.repository.fullName.isEmpty)
    }

    func testUnhandledEventsAreNamedWithTheReason() throws {
        let cycle = try decode(.plane, #"{"event": "cycle", "action": "created", "data": {"id": "c1"}}"#)
        XCTAssertEqual(cycle.name, "cycle.created")
        XCTAssertEqual(cycle.ignoredReason, "Plane event 'cycle' is not handled")
        let release = try decode(.gitea, #"{"action": "published"}"#, gitea: "release")
        XCTAssertEqual(release.name, "release")
        XCTAssertEqual(release.ignoredReason, "Gitea event 'release' is not handled")
        XCTAssertEqual(refusal(.gitea, "[1]", gitea: "release"), "body must be a JSON object")
    }

    func testRefusalsNameTheField() {
        let cases: [(WebhookSource, String, String?, String)] = [
            (.plane, "", nil, "body is not valid JSON"),
            (.plane, "{", nil, "body is not valid JSON"),
            (.plane, "[1, 2, 3]", nil, "body must be a JSON object"),
            (.plane, #"{"event": "issue", "action": "created"}"#, nil, "missing 'data'"),
            (.plane, #"{"event": 7, "action": "created", "data": {}}"#, nil, "'event' must be a string"),
            (.plane, #"{"event": "issue", "action": null, "data": {}}"#, nil, "missing 'action'"),
            (.plane, #"{"event": "issue", "action": "created", "data": []}"#, nil, "'data' must be an object"),
            (.plane, #"{"event": "issue", "action": "created", "data": {"sequence_id": 1}}"#, nil, "missing 'data.id'"),
            (
                .plane,
                #"{"event": "issue", "action": "created", "data": {"id": "x", "sequence_id": "98", "project": "p"}}"#,
                nil,
                "'data.sequence_id' must be an integer"
            ),
            (
                .plane,
                #"{"event": "issue", "action": "created", "data": {"id": "x", "sequence_id": true, "project": "p"}}"#,
                nil,
                "'data.sequence_id' must be an integer"
            ),
            (
                .plane,
                #"{"event": "issue", "action": "created", "data": {"id": "x", "sequence_id": 1.5, "project": "p"}}"#,
                nil,
                "'data.sequence_id' must be an integer"
            ),
            (
                .plane,
                #"{"event": "issue", "action": "created", "data": {"id": "x", "sequence_id": 1, "project": "p", "name": 4}}"#,
                nil,
                "'data.name' must be a string"
            ),
            (.plane, #"{"event": "issue", "action": "deleted", "data": {}}"#, nil, "missing 'data.id'"),
            (
                .plane, #"{"event": "issue_comment", "action": "created", "data": {"id": "c", "project": "p"}}"#, nil,
                "missing 'data.issue'"
            ),
            (.gitea, #"{"ref": "refs/heads/main", "after": "abc"}"#, nil, "missing X-Gitea-Event header"),
            (.gitea, #"{"ref": "refs/heads/main", "after": "abc"}"#, "", "missing X-Gitea-Event header"),
            (.gitea, #"{"sha": "abc"}"#, "status", "missing 'state'"),
            (.gitea, #"{"sha": "abc", "state": "success", "context": "ci"}"#, "status", "missing 'repository'"),
            (
                .gitea, #"{"ref": "refs/heads/main", "after": "abc", "repository": {}}"#, "push",
                "missing 'repository.full_name'"
            ),
            (
                .gitea,
                #"{"action": "opened", "number": 1, "pull_request": {"head": {}}, "repository": {"full_name": "a/b"}}"#,
                "pull_request", "missing 'pull_request.head.sha'"
            ),
            (.gitea, #"{"action": "opened", "number": "1"}"#, "pull_request", "'number' must be an integer"),
        ]
        for (source, body, gitea, message) in cases {
            XCTAssertEqual(refusal(source, body, gitea: gitea), message, body)
        }
    }

    func testHostileBodiesAreRefusedNotCrashed() {
        let deep = String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000)
        XCTAssertEqual(refusal(.plane, deep), "body is not valid JSON")
        let deepObject =
            #"{"event": "cycle", "action": "x", "data": "# + String(repeating: #"{"a":"#, count: 5000)
            + "1" + String(repeating: "}", count: 5000) + "}"
        XCTAssertNotNil(refusal(.plane, deepObject))
        XCTAssertEqual(
            (try? WebhookEvent.decode(source: .plane, giteaEvent: nil, body: Data([0xff, 0xfe, 0x00, 0x41])))?.name, nil
        )
    }

    func testJobContractsBuildTheJobsTheirHandlersRead() throws {
        let stage = try RunStageJob.job(
            StageJobPayload(work_item: "ORCH-1", stage: "review", visit: 2, attempt: 1, feedback: nil))
        XCTAssertEqual(stage.kind, "run_stage")
        XCTAssertEqual(stage.maxAttempts, 5)
        XCTAssertEqual(stage.dedupeKey, "stage:ORCH-1:review:v2:1")
        XCTAssertEqual(try stage.payload.decode(StageJobPayload.self).stage, "review")

        XCTAssertEqual(ProcessWebhookJob.dedupeKey(for: .init(deliveryID: 7)), "webhook:7")
        XCTAssertEqual(try JSONB(encoding: ProcessWebhookJob.Payload(deliveryID: 7)).text, #"{"delivery_id":7}"#)

        let alert = try AlertJob.job(.content(.init(text: "hi", key: "k")))
        XCTAssertEqual(alert.queue, "notify.telegram")
        XCTAssertEqual(alert.dedupeKey, "alert:k")
        let rest = try AlertJob.job(.remainder(["b", "c"], ofJob: 41))
        XCTAssertEqual(rest.dedupeKey, "telegram-rest:41")
        guard case .remainder(let messages, 41) = try rest.payload.decode(AlertJob.Payload.self) else {
            return XCTFail("not a rest")
        }
        XCTAssertEqual(messages, ["b", "c"])
        // A follow-up queued before it named its job still reads.
        guard
            case .remainder(["x"], nil) = try JSONB(text: #"{"remaining_messages": ["x"]}"#).decode(
                AlertJob.Payload.self)
        else { return XCTFail("old follow-up unreadable") }
        guard case .content(let old) = try JSONB(text: #"{"text": "old alert"}"#).decode(AlertJob.Payload.self)
        else { return XCTFail("old alert unreadable") }
        XCTAssertEqual(old, AlertJob.Alert(text: "old alert", key: nil))
    }
}
