import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

final class AdminTests: XCTestCase {
    var database: TestDatabase!
    static let token = "admin-test-token"

    override func setUp() async throws {
        database = try await TestDatabase.create(suite: "admin")
        let tasks = TaskStore(pool: database.pool)
        _ = try await tasks.upsert(
            workItem: "ORCH-7", repo: "acme/orch", title: "Seven", description: "", labels: ["bug"], track: .bug, auto: false,
            planeIssueID: "p7", planeProjectID: "proj", planeState: "Todo")
        try await tasks.apply(.stagePassed, workItem: "ORCH-7", actor: "system", reason: "spec written")
    }

    override func tearDown() async throws {
        await database?.drop()
    }

    private func app(token: String? = token) throws -> some ApplicationProtocol {
        var environment: [String: String] = [:]
        if let token { environment["ORCH_ADMIN_TOKEN"] = token }
        return Application(router: HTTPRoutes.router(pool: database.pool, configuration: try AppConfiguration(environment: environment)))
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
        (.post, "/tasks/ORCH-7/retry"), (.post, "/tasks/ORCH-7/cancel"), (.post, "/bug-fast-track/escalate?work_item=ORCH-7"),
    ]

    func testEveryAdminEndpointNeedsTheToken() async throws {
        try await app().test(.router) { client in
            for (method, uri) in Self.endpoints {
                try await client.execute(uri: uri, method: method) { response in
                    XCTAssertEqual(response.status, .unauthorized, uri)
                    XCTAssertEqual(Self.object(response.body)["ok"] as? Bool, false, uri)
                }
                try await client.execute(uri: uri, method: method, headers: Self.auth("wrong-token-of-same-len")) { response in
                    XCTAssertEqual(response.status, .unauthorized, uri)
                }
            }
        }
        try await app(token: nil).test(.router) { client in
            for (method, uri) in Self.endpoints {
                try await client.execute(uri: uri, method: method, headers: Self.auth(Self.token)) { response in
                    XCTAssertEqual(response.status, .serviceUnavailable, uri)
                    XCTAssertEqual(Self.object(response.body)["error"] as? String, "admin API disabled: set ORCH_ADMIN_TOKEN")
                }
            }
        }
        // Nothing changed.
        let task = try await TaskStore(pool: database.pool).task(workItem: "ORCH-7")
        XCTAssertEqual(task?.state.status, .awaitingApproval)
    }

    func testStatusQueueAndTask() async throws {
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
                XCTAssertEqual((body["counts"] as? [String: Int])?["queued"], 0)
                XCTAssertNotNil(body["replicas"] as? [Any])
                XCTAssertNotNil(body["recent"] as? [Any])
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
            try await client.execute(uri: "/tasks/ORCH-7/retry", method: .post, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .conflict)
                XCTAssertTrue((Self.object(response.body)["error"] as? String ?? "").contains("needs status failed or held"))
            }
            try await client.execute(uri: "/tasks/ORCH-7/approve", method: .post, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual((Self.object(response.body)["task"] as? [String: Any])?["status"] as? String, "active")
            }
            // Escalation only during analysis: this task is in development.
            try await client.execute(uri: "/bug-fast-track/escalate?work_item=ORCH-7", method: .post, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .conflict)
            }
            try await client.execute(uri: "/bug-fast-track/escalate", method: .post, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .badRequest)
                XCTAssertEqual(Self.object(response.body)["error"] as? String, "missing 'work_item'")
            }
            try await client.execute(uri: "/tasks/ORCH-7/cancel", method: .post, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .ok)
            }
            try await client.execute(uri: "/tasks/ORCH-7/cancel", method: .post, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .conflict)
            }
            try await client.execute(uri: "/tasks/ORCH-8/cancel", method: .post, headers: Self.auth(Self.token)) { response in
                XCTAssertEqual(response.status, .notFound)
            }
        }
        let history = try await TaskStore(pool: database.pool).history(workItem: "ORCH-7").map(\.event)
        XCTAssertEqual(history, ["stage_passed", "approved", "cancel"])
    }
}
