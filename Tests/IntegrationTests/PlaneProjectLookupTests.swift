import Foundation
import Hummingbird
import Store
import Synchronization
import TestSupport
import Workers
import XCTest

@testable import App

/// Repositories configured without `plane_project_id`: the project's identifier comes from the
/// Plane API (a local stand-in here), cached in memory and in `plane_projects` for every replica.
final class PlaneProjectLookupTests: DatabaseTestCase {
    static let webProject = "7e7e7e7e-1111-4222-8333-444455556666"
    static let flakyProject = "f1f1f1f1-1111-4222-8333-444455556666"
    let repos = [
        RepositorySettings(
            project: "ORCH", planeProjectID: "9d8c7b6a-5f4e-4d3c-8b2a-190817263544", repo: "acme/orch",
            cloneURL: "/srv/orch",
            defaultBranch: "main", testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil),
        RepositorySettings(
            project: "WEB", planeProjectID: nil, repo: "acme/web", cloneURL: "/srv/web",
            defaultBranch: "main", testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil),
    ]

    /// The stand-in Plane API: `GET /api/v1/workspaces/acme/projects/{id}/` with `X-API-Key`.
    private static func planeAPI(calls: CallLog) -> Router<BasicRequestContext> {
        let router = Router()
        let flakyFailures = Mutex(1)
        router.get("/api/v1/workspaces/acme/projects/:id/") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            calls.append(id)
            guard request.header(named: "X-API-Key") == "plane-key" else {
                return Response(
                    status: .unauthorized, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"detail":"bad key"}"#)))
            }
            switch id {
            case webProject:
                return Response(
                    status: .ok,
                    body: ResponseBody(
                        byteBuffer: ByteBuffer(string: #"{"id":"\#(id)","identifier":"WEB","name":"Web site"}"#)))
            case flakyProject
            where flakyFailures.withLock { count in
                defer { count -= 1 }; return count > 0
            }:
                return Response(status: .serviceUnavailable)
            case flakyProject:
                return Response(
                    status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"identifier":"WEB"}"#)))
            default:
                return Response(
                    status: .notFound, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"detail":"Not found."}"#)))
            }
        }
        return router
    }

    private func deliver(
        _ processor: WebhookProcessor, project: String, sequence: Int
    ) async throws -> (String, String?) {
        let body =
            #"{"event":"issue","action":"created","data":{"id":"issue-\#(sequence)-\#(project.prefix(4))","sequence_id":\#(sequence),"project":"\#(project)","name":"Item \#(sequence)","labels":[]}}"#
        let outcome = try await WebhookStore(pool: database.pool).record(
            .init(
                source: .plane, deliveryID: nil, bodySHA256: WebhookSignature.sha256Hex(Array(body.utf8)),
                event: "issue.created",
                payload: JSONB(text: body)))
        guard case .accepted(let id, _) = outcome else { throw TestSetupError("not accepted: \(outcome)") }
        try await processor.process(deliveryID: id, logger: testLogger)
        let row = try await database.pool.query("SELECT status, reason FROM webhook_deliveries WHERE id = $1", [id])
            .first!
        return (try row.decode("status"), try row.decode("reason"))
    }

    func testProjectsWithoutAnIDAreResolvedThroughThePlaneAPIOnceForAllReplicas() async throws {
        let calls = CallLog()
        let pool = database.pool
        let repos = self.repos
        try await StandInServer.with(Self.planeAPI(calls: calls)) { base in
            let api = PlaneAPISettings(baseURL: base, apiKey: "plane-key", workspace: "acme")
            let first = WebhookProcessor(pool: pool, repos: repos, labels: LabelSettings(), planeAPI: api)
            let created = try await self.deliver(first, project: Self.webProject, sequence: 5)
            XCTAssertEqual(created.0, "processed")
            XCTAssertEqual(created.1, "WEB-5 created")
            _ = try await self.deliver(first, project: Self.webProject, sequence: 6)
            // Another replica (a new processor, empty memory) finds the identifier in the database.
            let second = WebhookProcessor(pool: pool, repos: repos, labels: LabelSettings(), planeAPI: api)
            _ = try await self.deliver(second, project: Self.webProject, sequence: 7)
            XCTAssertEqual(calls.all, [Self.webProject], "fetched once, then cached")

            // A configured plane_project_id never asks the API.
            _ = try await self.deliver(second, project: "9d8c7b6a-5f4e-4d3c-8b2a-190817263544", sequence: 98)
            XCTAssertEqual(calls.all.count, 1)

            let unknown = try await self.deliver(second, project: "00000000-0000-4000-8000-000000000000", sequence: 1)
            XCTAssertEqual(unknown.0, "ignored")
            XCTAssertEqual(
                unknown.1, "Plane project 00000000-0000-4000-8000-000000000000 does not exist in the Plane API")

            // The API failing with 503: the job fails (and is retried by the queue); the retry works.
            do {
                _ = try await self.deliver(second, project: Self.flakyProject, sequence: 8)
                XCTFail("expected the Plane API error")
            } catch let error as PlaneAPIError {
                XCTAssertTrue(error.isRetryable)
            }
            let delivery: Int64 = try await pool.query("SELECT max(id) AS id FROM webhook_deliveries").first!.decode(
                "id")
            try await second.process(deliveryID: delivery, logger: testLogger)

            // A wrong key is not retryable and says what to check.
            let badKey = WebhookProcessor(
                pool: pool, repos: repos, labels: LabelSettings(),
                planeAPI: PlaneAPISettings(baseURL: base, apiKey: "wrong", workspace: "acme"))
            do {
                _ = try await self.deliver(badKey, project: "abababab-0000-4000-8000-000000000000", sequence: 2)
                XCTFail("expected the Plane API error")
            } catch let error as PlaneAPIError {
                XCTAssertFalse(error.isRetryable)
                XCTAssertTrue(error.description.contains("401"), error.description)
            }
        }
        let tasks = try await database.pool.query("SELECT work_item FROM tasks ORDER BY work_item").rows.map {
            try $0.decode("work_item", as: String.self)
        }
        XCTAssertEqual(tasks, ["ORCH-98", "WEB-5", "WEB-6", "WEB-7", "WEB-8"])
        let cached = try await PlaneProjectStore(pool: database.pool).identifier(projectID: Self.webProject)
        XCTAssertEqual(cached, "WEB")
    }

    func testWithoutThePlaneAPITheDeliveryIsIgnoredWithTheReason() async throws {
        let processor = WebhookProcessor(pool: database.pool, repos: repos, labels: LabelSettings())
        let (status, reason) = try await deliver(processor, project: Self.webProject, sequence: 5)
        XCTAssertEqual(status, "ignored")
        XCTAssertEqual(
            reason,
            "Plane project \(Self.webProject) is not configured (repos[].plane_project_id), and the Plane API is not set up to look it up (ORCH_PLANE_API_URL, ORCH_PLANE_API_KEY, ORCH_PLANE_WORKSPACE)"
        )
    }

    func testOutsideServiceSettingsAreAllOrNothing() throws {
        XCTAssertNil(try AppConfiguration(environment: [:]).planeAPI)
        let full = try AppConfiguration(environment: [
            "ORCH_PLANE_API_URL": "https://plane.example.com", "ORCH_PLANE_API_KEY": "k",
            "ORCH_PLANE_WORKSPACE": "acme",
        ]).planeAPI
        XCTAssertEqual(full?.workspace, "acme")
        XCTAssertThrowsError(try AppConfiguration(environment: ["ORCH_PLANE_API_URL": "https://plane.example.com"])) {
            error in
            XCTAssertTrue("\(error)".contains("ORCH_PLANE_API_KEY"), "\(error)")
        }
        XCTAssertThrowsError(
            try AppConfiguration(environment: [
                "ORCH_PLANE_API_URL": "plane.example.com", "ORCH_PLANE_API_KEY": "k", "ORCH_PLANE_WORKSPACE": "acme",
            ])
        ) { error in
            XCTAssertTrue("\(error)".contains("ORCH_PLANE_API_URL"), "\(error)")
        }
        // The other outside services follow the same rule.
        XCTAssertThrowsError(try AppConfiguration(environment: ["ORCH_GITEA_TOKEN": "t"])) { error in
            XCTAssertTrue("\(error)".contains("ORCH_GITEA_API_URL"), "\(error)")
        }
        XCTAssertThrowsError(try AppConfiguration(environment: ["ORCH_TELEGRAM_BOT_TOKEN": "t"])) { error in
            XCTAssertTrue("\(error)".contains("ORCH_TELEGRAM_CHAT_ID"), "\(error)")
        }
        let telegram = try AppConfiguration(environment: [
            "ORCH_TELEGRAM_BOT_TOKEN": "t", "ORCH_TELEGRAM_CHAT_ID": "42",
        ]).telegram
        XCTAssertEqual(telegram?.apiURL.absoluteString, "https://api.telegram.org")
        XCTAssertEqual(try AppConfiguration(environment: ["ORCH_WORKDIR": "/srv/orch"]).workdir, "/srv/orch")
    }
}

/// Requests a stand-in server received.
final class CallLog: Sendable {
    private let calls = Mutex<[String]>([])
    func append(_ call: String) { calls.withLock { $0.append(call) } }
    var all: [String] { calls.withLock { $0 } }
}
