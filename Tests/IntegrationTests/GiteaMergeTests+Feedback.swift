import Foundation
import Store
import TestSupport
import XCTest

@testable import App

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

// CI and review feedback (issue #15 items 1 and 2) in a real `orchestrator serve` process against
// the Gitea stand-in: red CI on the first pull-request head, or a review requesting changes, sends
// the task back to development with the failed check or the review's text in the agent's prompt;
// the fixed head turns green and merges with no human.
extension GiteaMergeTests {
    func testRedCIOnThePullRequestSendsTheTaskBackToDevelopmentAndTheFixedHeadMerges() async throws {
        let remote = try makeBareRemote(in: root)
        let root = self.root!
        let database = self.database!
        let gitea = GiteaStandIn.over(remote: remote, root: root, ciState: "failure")
        gitea.ciStatuses.value = ["failure"]
        let dump = root.appendingPathComponent("dump")
        let agent = packageRoot.appendingPathComponent("examples/agent/agent.py").path
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        let config = root.appendingPathComponent("orchestrator.yaml")
        let project = "plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544"
        try """
        repos: [{ project: ORCH, \(project), repo: acme/orch, clone_url: "\(remote.path)", ci_fix_rounds: 1 }]
        agents: { default: { command: ["\(python)", "\(agent)", "--dump", "\(dump.path)"], timeout: 60s } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let secret = "merge-secret"
        let tasks = TaskStore(pool: database.pool)
        try await StandInServer.with(gitea.router) { api in
            let base = try await serve(
                "cifeedback", gitea: api, config: config, planeSecret: secret, ciPollInterval: "1s")
            let answered = try await sendPlaneIssue(to: base, secret: secret)
            XCTAssertEqual(answered, 202)

            let sentBack = try await waitUntil(timeout: .seconds(120)) {
                try await tasks.history(workItem: "ORCH-98").contains { $0.event == "ci_failed" }
            }
            XCTAssertTrue(sentBack, "red CI sent the task back to development")
            // The fix is green: whatever head comes next passes.
            gitea.ciState.value = "success"
            gitea.ciStatuses.value = ["success"]
            let done = try await waitUntil(timeout: .seconds(120)) {
                try await tasks.task(workItem: "ORCH-98")?.state.status == .done
            }
            let state = try await tasks.task(workItem: "ORCH-98")?.state
            XCTAssertTrue(done, "\(String(describing: state)) \(gitea.requestLog.suffix(8))")
        }
        let events = try await tasks.history(workItem: "ORCH-98").map(\.event)
        XCTAssertEqual(events.filter { $0 == "ci_failed" }.count, 1, "\(events)")
        XCTAssertFalse(events.contains("held"), "\(events)")
        // Development ran twice; the second run's prompt carries the failed check.
        let prompts = try FileManager.default.contentsOfDirectory(atPath: dump.path)
            .filter { $0.hasPrefix("prompt-development-") }
            .sorted { Int($0.dropFirst(19).dropLast(4)) ?? 0 < Int($1.dropFirst(19).dropLast(4)) ?? 0 }
        XCTAssertEqual(prompts.count, 2, "\(prompts)")
        let second = try String(contentsOf: dump.appendingPathComponent(prompts.last ?? ""), encoding: .utf8)
        XCTAssertTrue(second.contains("CI failed on the pull request's head"), second)
        XCTAssertTrue(second.contains("- ci/0: failure"), second)
        let first = try String(contentsOf: dump.appendingPathComponent(prompts.first ?? ""), encoding: .utf8)
        XCTAssertFalse(first.contains("CI failed"), first)
        XCTAssertEqual(gitea.mergeCalls.count, 1, "merged once, the fixed head")
    }

    func testAReviewRequestingChangesSendsTheTaskBackToDevelopmentWithItsText() async throws {
        let (prompts, mergeCalls, _) = try await reviewWhileTheMergeWaits(reviewer: "dana", allowedActors: nil)
        XCTAssertEqual(prompts.count, 2, "development ran again")
        XCTAssertTrue(
            prompts.last?.contains("- dana (dana@example.com) requested changes: Handle the empty draft too.") ?? false,
            prompts.last ?? "")
        XCTAssertEqual(mergeCalls, 1, "merged once, after the fix")
    }

    /// Who may trigger (issue #15 item 8) with a real replica: a review from someone
    /// `allowed_actors` does not name is stored ignored and changes nothing; the task merges as if
    /// it had not been written.
    func testAReviewFromSomeoneNotAllowedDoesNothing() async throws {
        let (prompts, mergeCalls, reason) = try await reviewWhileTheMergeWaits(
            reviewer: "eve", allowedActors: ["dana@example.com"])
        XCTAssertEqual(reason, "eve (eve@example.com) is not in allowed_actors of acme/orch")
        XCTAssertEqual(prompts.count, 1, "development ran once")
        XCTAssertEqual(mergeCalls, 1)
        let events = try await TaskStore(pool: database.pool).history(workItem: "ORCH-98").map(\.event)
        XCTAssertFalse(events.contains("review_feedback"), "\(events)")
    }

    /// A real replica takes ORCH-98 (written in Plane by dana) to its merge, which waits for CI;
    /// `reviewer` then requests changes on the PR. Once the review is processed (and has sent the
    /// task back, unless it was ignored) CI turns green and the task runs to its end. Returns the
    /// development prompts in run order, the merge calls, and the review delivery's ignored reason.
    private func reviewWhileTheMergeWaits(
        reviewer: String, allowedActors: [String]?
    ) async throws -> (prompts: [String], mergeCalls: Int, ignored: String?) {
        let remote = try makeBareRemote(in: root)
        let root = self.root!
        let database = self.database!
        // CI stays pending until the test says: the merge waits, and the review arrives meanwhile.
        let gitea = GiteaStandIn.over(remote: remote, root: root, ciState: "pending")
        let dump = root.appendingPathComponent("dump")
        let agent = packageRoot.appendingPathComponent("examples/agent/agent.py").path
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        let config = root.appendingPathComponent("orchestrator.yaml")
        let project = "plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544"
        let allowed = allowedActors.map { ", allowed_actors: [\($0.joined(separator: ", "))]" } ?? ""
        try """
        repos: [{ project: ORCH, \(project), repo: acme/orch, clone_url: "\(remote.path)"\(allowed) }]
        agents: { default: { command: ["\(python)", "\(agent)", "--dump", "\(dump.path)"], timeout: 60s } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let secret = "merge-secret"
        let tasks = TaskStore(pool: database.pool)
        var ignored: String?
        try await StandInServer.with(gitea.router) { api in
            let base = try await serve(
                "reviewfeedback", gitea: api, config: config, planeSecret: secret, ciPollInterval: "10m")
            let answered = try await sendPlaneIssue(to: base, secret: secret)
            XCTAssertEqual(answered, 202)
            let waiting = try await waitUntil(timeout: .seconds(120)) {
                try await tasks.task(workItem: "ORCH-98")?.state.stage == .merge
                    && gitea.requestLog.contains { $0.contains("/status") }
            }
            XCTAssertTrue(waiting, "the merge waits for CI")

            let review: [String: Any] = [
                "action": "reviewed", "number": 1,
                "review": ["type": "pull_request_review_rejected", "content": "Handle the empty draft too."],
                "repository": ["full_name": "acme/orch", "id": 1],
                "sender": ["login": reviewer, "email": "\(reviewer)@example.com"],
            ]
            let status = try await postGitea(base, event: "pull_request_rejected", review)
            XCTAssertEqual(status, 202)
            // Processed: the review wakes the waiting merge (the CI poll is 10 minutes), which sends
            // the task back to development — or it was ignored.
            let processed = try await waitUntil(timeout: .seconds(60)) {
                let row = try await database.pool.query(
                    "SELECT status, reason FROM webhook_deliveries WHERE event = 'pull_request_rejected'"
                ).first
                guard let status = try row?.decode("status", as: String.self), status != "pending" else { return false }
                if status == "ignored" {
                    ignored = try row?.decode("reason", as: String?.self)
                    return true
                }
                return try await tasks.history(workItem: "ORCH-98").contains { $0.event == "review_feedback" }
            }
            XCTAssertTrue(processed)
            gitea.ciState.value = "success"
            if ignored != nil {
                // Nothing woke the merge: CI's own status webhook does (the poll is 10 minutes).
                var status =
                    try JSONSerialization.jsonObject(with: Data(try WebhookTests.fixture("gitea/status_success.json")))
                    as! [String: Any]
                status["sha"] = try await tasks.task(workItem: "ORCH-98")?.headSHA
                status["id"] = 5000
                let answered = try await postGitea(base, event: "status", status)
                XCTAssertEqual(answered, 202)
            }
            let done = try await waitUntil(timeout: .seconds(120)) {
                try await tasks.task(workItem: "ORCH-98")?.state.status == .done
            }
            XCTAssertTrue(done)
        }
        let prompts = try FileManager.default.contentsOfDirectory(atPath: dump.path)
            .filter { $0.hasPrefix("prompt-development-") }
            .sorted { Int($0.dropFirst(19).dropLast(4)) ?? 0 < Int($1.dropFirst(19).dropLast(4)) ?? 0 }
            .map { try String(contentsOf: dump.appendingPathComponent($0), encoding: .utf8) }
        return (prompts, gitea.mergeCalls.count, ignored)
    }

    /// Posts a signed Gitea webhook to a replica; returns the HTTP status.
    private func postGitea(_ base: URL, event: String, _ json: [String: Any]) async throws -> Int? {
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        var request = URLRequest(url: base.appendingPathComponent("webhook/gitea"))
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        request.setValue(event, forHTTPHeaderField: "X-Gitea-Event")
        request.setValue(UUID().uuidString, forHTTPHeaderField: "X-Gitea-Delivery")
        request.setValue(
            WebhookSignature.hmacSHA256Hex(secret: "gitea-secret", body: body), forHTTPHeaderField: "X-Gitea-Signature")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode
    }
}
