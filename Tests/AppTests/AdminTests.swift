import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

final class AdminTests: DatabaseTestCase {
    static let token = "admin-test-token"

    override func setUp() async throws {
        try await super.setUp()
        let tasks = TaskStore(pool: database.pool)
        _ = try await tasks.upsert(
            workItem: "ORCH-7", repo: "acme/orch", title: "Seven", description: "", labels: ["bug"], track: .bug,
            auto: false,
            planeIssueID: "p7", planeProjectID: "proj", planeState: "Todo")
        try await tasks.apply(.stagePassed, workItem: "ORCH-7", actor: "system", reason: "spec written")
    }

    private func app(token: String? = token) throws -> some ApplicationProtocol {
        var environment: [String: String] = [:]
        if let token { environment["ORCH_ADMIN_TOKEN"] = token }
        return Application(
            router: HTTPRoutes.router(
                pool: database.pool, configuration: try AppConfiguration(environment: environment)))
    }

    private static func auth(_ token: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.authorization] = "Bearer \(token)"
        return fields
    }

    private static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    static let endpoints: [(HTTPRequest.Method, String)] = [
        (.get, "/status"), (.get, "/queue"), (.get, "/tasks/ORCH-7"), (.post, "/tasks/ORCH-7/approve"),
        (.post, "/tasks/ORCH-7/retry"), (.post, "/tasks/ORCH-7/cancel"),
        (.post, "/bug-fast-track/escalate?work_item=ORCH-7"),
        (.get, "/metrics"), (.get, "/metrics/prometheus"), (.post, "/fs-normalize/check?normalize=1"),
    ]

    func testEveryAdminEndpointNeedsTheToken() async throws {
        try await app().test(.router) { client in
            for (method, uri) in Self.endpoints {
                try await client.execute(uri: uri, method: method) { response in
                    XCTAssertEqual(response.status, .unauthorized, uri)
                    XCTAssertEqual(Self.object(response.body)["ok"] as? Bool, false, uri)
                }
                try await client.execute(uri: uri, method: method, headers: Self.auth("wrong-token-of-same-len")) {
                    response in
                    XCTAssertEqual(response.status, .unauthorized, uri)
                }
            }
        }
        try await app(token: nil).test(.router) { client in
            for (method, uri) in Self.endpoints {
                try await client.execute(uri: uri, method: method, headers: Self.auth(Self.token)) { response in
                    XCTAssertEqual(response.status, .serviceUnavailable, uri)
                    XCTAssertEqual(
                        Self.object(response.body)["error"] as? String, "admin API disabled: set ORCH_ADMIN_TOKEN")
                }
            }
        }
        // Nothing changed.
        let task = try await TaskStore(pool: database.pool).task(workItem: "ORCH-7")
        XCTAssertEqual(task?.state.status, .awaitingApproval)
    }

    func testStatusQueueAndTask() async throws {
        let runs = MaintenanceStore(pool: database.pool)
        try await runs.record(duty: "rescue", replicaID: "replica-1", affected: 2, error: nil)
        try await runs.record(duty: "rescue", replicaID: "replica-1", affected: 3, error: nil)
        _ = try await LessonStore(pool: database.pool).record(
            Lesson(type: "gate_failure", rootCause: "spec.md missing"))
        try await app().test(.router) { client in
            try await client.execute(uri: "/status", method: .get, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .ok)
                let tasks = Self.object(response.body)["active_tasks"] as? [[String: Any]]
                XCTAssertEqual(tasks?.count, 1)
                XCTAssertEqual(tasks?.first?["work_item"] as? String, "ORCH-7")
                XCTAssertEqual(tasks?.first?["status"] as? String, "awaiting_approval")
            }
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["max_concurrency"] as? Int, 4)
                // ORCH-7's first stage job, enqueued with the task (it awaits approval since).
                XCTAssertEqual((body["counts"] as? [String: Int])?["queued"], 1)
                XCTAssertNotNil(body["replicas"] as? [Any])
                XCTAssertNotNil(body["recent"] as? [Any])
                let reaper = body["reaper"] as? [String: Any]
                XCTAssertEqual(reaper?["enabled"] as? Bool, true)
                let rescue = (reaper?["duties"] as? [String: [String: Any]])?["rescue"]
                XCTAssertEqual(rescue?["replica"] as? String, "replica-1")
                XCTAssertEqual(rescue?["total_affected"] as? Int, 5)
                XCTAssertEqual(rescue?["runs"] as? Int, 2)
                XCTAssertEqual(((body["lessons"] as? [String: Any])?["by_type"] as? [String: Int])?["gate_failure"], 1)
                let bugs = body["bug_fast_track"] as? [String: Any]
                XCTAssertEqual(bugs?["label"] as? String, "bug")
                XCTAssertEqual(bugs?["tasks"] as? [String: Int], ["awaiting_approval": 1])
                XCTAssertEqual(
                    bugs?["architecture_skipped"] as? Int, 1, "ORCH-7 went from analysis straight to development")
                XCTAssertEqual(bugs?["escalated"] as? Int, 0)
                let stop = body["stop"] as? [String: Any]
                XCTAssertEqual(stop?["label"] as? String, "STOP")
                XCTAssertEqual(stop?["cancelled_tasks"] as? Int, 0)
                let postDeploy = body["post_deploy"] as? [String: Any]
                XCTAssertEqual(postDeploy?["enabled"] as? Bool, true)
                XCTAssertEqual((postDeploy?["watching"] as? [Any])?.count, 0)
                XCTAssertEqual((postDeploy?["recent"] as? [Any])?.count, 0)
                let webhooks = body["webhooks"] as? [String: Any]
                XCTAssertEqual(webhooks?["plane_secret_set"] as? Bool, false)
                XCTAssertNotNil(webhooks?["deliveries"] as? [String: Int])
            }
            try await client.execute(uri: "/tasks/ORCH-7", method: .get, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual((body["task"] as? [String: Any])?["stage"] as? String, "development")
                let history = body["history"] as? [[String: Any]]
                XCTAssertEqual(history?.first?["event"] as? String, "stage_passed")
                XCTAssertEqual(history?.first?["reason"] as? String, "spec written")
            }
            try await client.execute(uri: "/tasks/ORCH-404", method: .get, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .notFound)
                XCTAssertEqual(Self.object(response.body)["error"] as? String, "unknown task 'ORCH-404'")
            }
        }
    }

    func testOperatorActionsGoThroughTheStateMachine() async throws {
        try await app().test(.router) { client in
            // Retry needs a failed or held task: refused with 409 and the reason.
            try await client.execute(uri: "/tasks/ORCH-7/retry", method: .post, headers: Self.auth(Self.token)) {
                response in
                XCTAssertEqual(response.status, .conflict)
                XCTAssertTrue(
                    (Self.object(response.body)["error"] as? String ?? "").contains("needs status failed or held"))
            }
            try await client.execute(uri: "/tasks/ORCH-7/approve", method: .post, headers: Self.auth(Self.token)) {
                response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual((Self.object(response.body)["task"] as? [String: Any])?["status"] as? String, "active")
            }
            // Escalation only during analysis: this task is in development.
            try await client.execute(
                uri: "/bug-fast-track/escalate?work_item=ORCH-7", method: .post, headers: Self.auth(Self.token)
            ) { response in
                XCTAssertEqual(response.status, .conflict)
            }
            try await client.execute(uri: "/bug-fast-track/escalate", method: .post, headers: Self.auth(Self.token)) {
                response in
                XCTAssertEqual(response.status, .badRequest)
                XCTAssertEqual(Self.object(response.body)["error"] as? String, "missing 'work_item'")
            }
            try await client.execute(uri: "/tasks/ORCH-7/cancel", method: .post, headers: Self.auth(Self.token)) {
                response in
                XCTAssertEqual(response.status, .ok)
            }
            try await client.execute(uri: "/tasks/ORCH-7/cancel", method: .post, headers: Self.auth(Self.token)) {
                response in
                XCTAssertEqual(response.status, .conflict)
            }
            try await client.execute(uri: "/tasks/ORCH-8/cancel", method: .post, headers: Self.auth(Self.token)) {
                response in
                XCTAssertEqual(response.status, .notFound)
            }
        }
        let history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-7").map(\.event)
        XCTAssertEqual(history, ["stage_passed", "approved", "cancel"])
    }

    func testApproveWithAStageIsRefusedUnlessThatStageAwaitsApproval() async throws {
        // ORCH-7 (bug track) passed analysis: development awaits approval.
        try await app().test(.router) { client in
            try await client.execute(
                uri: "/tasks/ORCH-7/approve?stage=architecture", method: .post, headers: Self.auth(Self.token)
            ) { response in
                XCTAssertEqual(response.status, .conflict)
                XCTAssertEqual(
                    Self.object(response.body)["error"] as? String,
                    "cannot apply 'approved' to a task in development/awaiting_approval (bug track): "
                        + "the approval is for architecture, but the task awaits approval of development")
            }
            try await client.execute(
                uri: "/tasks/ORCH-7/approve?stage=later", method: .post, headers: Self.auth(Self.token)
            ) { response in
                XCTAssertEqual(response.status, .badRequest)
                XCTAssertEqual(
                    Self.object(response.body)["error"] as? String,
                    "unknown stage 'later' (one of analysis, architecture, development, review, merge, deploy, done)")
            }
            try await client.execute(
                uri: "/tasks/ORCH-7/approve?stage=development", method: .post, headers: Self.auth(Self.token)
            ) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual((Self.object(response.body)["task"] as? [String: Any])?["status"] as? String, "active")
            }
            // A second click on the same approval finds nothing awaiting.
            try await client.execute(
                uri: "/tasks/ORCH-7/approve?stage=development", method: .post, headers: Self.auth(Self.token)
            ) { response in
                XCTAssertEqual(response.status, .conflict)
                XCTAssertTrue(
                    (Self.object(response.body)["error"] as? String ?? "").hasSuffix("needs status awaiting_approval"))
            }
        }
        let history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-7").map(\.event)
        XCTAssertEqual(history, ["stage_passed", "approved"])
    }

    func testMetricsEnvelopeAndPrometheusExposition() async throws {
        try await JobStore(pool: database.pool).enqueue(NewJob(kind: "metrics.probe", payload: JSONB(text: "{}")))
        try await app().test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["schema_version"] as? Int, 1)
                XCTAssertNotNil(body["generated_at"] as? String)
                XCTAssertEqual(body["clk_tck"] as? Int, sysconf(Int32(_SC_CLK_TCK)))
                let stages = body["stages"] as? [[String: Any]] ?? []
                XCTAssertEqual(stages.map { $0["stage"] as? String }, TaskStage.allCases.map(\.rawValue))
                // ORCH-7 left analysis (bug track: straight to development, awaiting approval).
                XCTAssertEqual(stages.first?["exits"] as? Int, 1)
                XCTAssertEqual(
                    (stages.first { $0["stage"] as? String == "development" }?["tasks"] as? [String: Int])?[
                        "awaiting_approval"], 1)
                let queue = body["queue"] as? [String: Any]
                XCTAssertEqual(
                    (queue?["counts"] as? [String: Int])?["queued"], 2, "the probe and ORCH-7's analysis job")
                XCTAssertEqual((queue?["by_kind"] as? [String: [String: Int]])?["metrics.probe"]?["queued"], 1)
                XCTAssertNotNil(queue?["oldest_ready_seconds"] as? Double)
                XCTAssertEqual((body["agents"] as? [Any])?.count, 0)
                XCTAssertEqual((body["cost"] as? [String: Any])?["runs"] as? Int, 0)
            }
            // A rejected webhook, then the scrape: deliveries by source/outcome, queue depth, and
            // request durations by route template.
            try await client.execute(uri: "/webhook/plane", method: .post, body: ByteBuffer(string: "{}")) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
            try await client.execute(uri: "/metrics/prometheus", method: .get, headers: Self.auth(Self.token)) {
                response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.headers[.contentType], "text/plain; version=0.0.4; charset=utf-8")
                let text = String(buffer: response.body)
                XCTAssertTrue(text.contains(#"orch_queue_jobs{status="queued"} 2"#), text)
                XCTAssertTrue(
                    text.range(
                        of: #"orch_webhook_deliveries_total\{source="plane",outcome="unauthorized"\} [1-9]"#,
                        options: .regularExpression) != nil, text)
                XCTAssertTrue(text.contains(#"http_route="/metrics""#), text)
                XCTAssertTrue(text.contains("http_server_request_duration"), text)
            }
        }
        // ORCH_METRICS_PUBLIC opens the exposition only.
        let open = Application(
            router: HTTPRoutes.router(
                pool: database.pool,
                configuration: try AppConfiguration(environment: [
                    "ORCH_ADMIN_TOKEN": Self.token, "ORCH_METRICS_PUBLIC": "1",
                ])))
        try await open.test(.router) { client in
            try await client.execute(uri: "/metrics/prometheus", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
        }
    }

    func testEscalationAnswersWithTheSeedsFieldsAndTheTask() async throws {
        _ = try await TaskStore(pool: database.pool).upsert(
            workItem: "ORCH-9", repo: "acme/orch", title: "Nine", description: "", labels: ["bug"], track: .bug,
            auto: false, planeIssueID: "p9", planeProjectID: "proj", planeState: "Todo")
        try await app().test(.router) { client in
            try await client.execute(
                uri: "/bug-fast-track/escalate?work_item=ORCH-9", method: .post, headers: Self.auth(Self.token)
            ) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["ok"] as? Bool, true)
                XCTAssertEqual(body["work_item"] as? String, "ORCH-9")
                XCTAssertEqual(body["track"] as? String, "full")
                XCTAssertEqual(body["was"] as? String, "bug")
                XCTAssertEqual((body["task"] as? [String: Any])?["track"] as? String, "full")
            }
        }
    }
}
