import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

/// `POST /serial-gate/unfreeze`, `POST /tasks/{wi}/dependencies` and the `/queue` blocks
/// `serial_gate` and `task_deps`, in-process against PostgreSQL.
final class GateRouteTests: DatabaseTestCase {
    static let token = "gate-test-token"
    var config: URL!
    var tasks: TaskStore!

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        config = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-gates-\(UUID().uuidString.prefix(8)).yaml")
        try """
        repos:
          - project: APP
            repo: acme/app
            clone_url: /nonexistent/app.git
            max_active_tasks: 2
        """.write(to: config, atomically: true, encoding: .utf8)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: config)
        try await super.tearDown()
    }

    private func app() throws -> some ApplicationProtocol {
        Application(
            router: HTTPRoutes.router(
                pool: database.pool,
                configuration: try AppConfiguration(environment: [
                    "ORCH_ADMIN_TOKEN": Self.token, "ORCH_CONFIG": config.path,
                ])))
    }

    private static var auth: HTTPFields {
        var fields = HTTPFields()
        fields[.authorization] = "Bearer \(token)"
        fields[.contentType] = "application/json"
        return fields
    }

    private static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    private func newTask(_ workItem: String) async throws {
        _ = try await tasks.upsert(
            workItem: workItem, repo: "acme/app", title: workItem, description: "", labels: ["auto"], track: .full,
            auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
    }

    func testUnfreezeAnswersTheSeedsBodyIsIdempotentAndStartsTheWaitingTask() async throws {
        try await newTask("APP-1")
        try await database.pool.withTransaction { connection in
            _ = try await RepositoryGateStore.freeze(
                repo: "acme/app", reason: "merge commit m1 is red", workItem: "APP-0", on: connection)
        }
        let waiting = try await tasks.apply(
            .stagePassed, workItem: "APP-1", actor: "test", reason: "passed",
            about: StageVisit(stage: .analysis, visit: 1))
        XCTAssertEqual(waiting?.state.status, .waiting)
        try await app().test(.router) { client in
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                let gate = Self.object(response.body)["serial_gate"] as? [String: Any]
                XCTAssertEqual(gate?["enabled"] as? Bool, true)
                let repo = (gate?["repos"] as? [[String: Any]])?.first
                XCTAssertEqual(repo?["repo"] as? String, "acme/app")
                XCTAssertEqual(repo?["max_active_tasks"] as? Int, 2)
                XCTAssertEqual(repo?["frozen"] as? Bool, true)
                XCTAssertEqual(repo?["frozen_reason"] as? String, "merge commit m1 is red")
                XCTAssertEqual(repo?["frozen_by"] as? String, "APP-0")
                XCTAssertNotNil(repo?["frozen_since"])
                XCTAssertEqual(repo?["waiting"] as? [String], ["APP-1"])
            }
            try await client.execute(uri: "/serial-gate/unfreeze", method: .post, headers: Self.auth) { response in
                XCTAssertEqual(response.status, .badRequest)
                let body = Self.object(response.body)
                XCTAssertEqual(body["ok"] as? Bool, false)
                XCTAssertEqual(body["error"] as? String, "missing 'repo'")
            }
            for cleared in [1, 0] {
                try await client.execute(
                    uri: "/serial-gate/unfreeze?repo=acme/app", method: .post, headers: Self.auth
                ) { response in
                    XCTAssertEqual(response.status, .ok)
                    let body = Self.object(response.body)
                    XCTAssertEqual(body["ok"] as? Bool, true)
                    XCTAssertEqual(body["repo"] as? String, "acme/app")
                    XCTAssertEqual(body["cleared"] as? Int, cleared)
                    XCTAssertEqual(body["frozen"] as? Bool, false)
                }
            }
        }
        let started = try await tasks.task(workItem: "APP-1")
        XCTAssertEqual(started?.state.status, .active)
    }

    func testTheAutoLabelsBlockShowsTheLabelsAndTheirSwitch() async throws {
        let app = Application(
            router: HTTPRoutes.router(
                pool: database.pool,
                configuration: try AppConfiguration(environment: [
                    "ORCH_ADMIN_TOKEN": Self.token, "ORCH_CONFIG": config.path, "ORCH_AUTO_LABELS_ENABLED": "0",
                ])))
        try await app.test(.router) { client in
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                let block = Self.object(response.body)["auto_labels"] as? [String: Any]
                XCTAssertEqual(block?["enabled"] as? Bool, false)
                XCTAssertEqual(block?["labels"] as? [String: String], ["auto": "auto", "bug": "bug", "stop": "STOP"])
                XCTAssertEqual(block?["auto_tasks"] as? Int, 0)
            }
        }
    }

    func testDependenciesThroughTheAPIAndTheTaskDepsBlock() async throws {
        try await newTask("APP-5")
        try await app().test(.router) { client in
            let cases: [(String, String, HTTPResponse.Status)] = [
                ("APP-5", "{}", .badRequest), ("APP-5", #"{"depends_on": ["nope"]}"#, .badRequest),
                ("APP-404", #"{"depends_on": ["APP-1"]}"#, .notFound),
            ]
            for (workItem, body, status) in cases {
                try await client.execute(
                    uri: "/tasks/\(workItem)/dependencies", method: .post, headers: Self.auth,
                    body: ByteBuffer(string: body)
                ) { response in
                    XCTAssertEqual(response.status, status, body)
                    XCTAssertEqual(Self.object(response.body)["ok"] as? Bool, false)
                }
            }
            try await client.execute(
                uri: "/tasks/APP-5/dependencies", method: .post, headers: Self.auth,
                body: ByteBuffer(string: #"{"depends_on": ["APP-6", "APP-5"]}"#)
            ) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["status"] as? String, "blocked")
                let edges = body["depends_on"] as? [[String: Any]]
                XCTAssertEqual(edges?.map { $0["depends_on"] as? String }, ["APP-6"])
                let refused = body["refused"] as? [[String: Any]]
                XCTAssertEqual(refused?.first?["cycle"] as? [String], ["APP-5", "APP-5"])
            }
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                let block = Self.object(response.body)["task_deps"] as? [String: Any]
                XCTAssertEqual(block?["enabled"] as? Bool, true)
                let blocked = (block?["blocked"] as? [[String: Any]])?.first
                XCTAssertEqual(blocked?["work_item"] as? String, "APP-5")
                XCTAssertEqual(blocked?["waiting_for"] as? [String], ["APP-6"])
                XCTAssertEqual((block?["cycles_refused"] as? [Any])?.count, 1)
            }
        }
    }

    /// A repository taken out of gates (`gates:` in its entry, and `ORCH_MERGE_GATE_REPOS`):
    /// every gate's block says `scope: some` and names it, its serial gate has no limit, and
    /// `POST /tasks/{wi}/dependencies` refuses edges for its tasks with 409.
    func testEachGateBlockShowsItsScopeAndTheDependencyAPIHonoursIt() async throws {
        try """
        repos:
          - project: APP
            repo: acme/app
            clone_url: /nonexistent/app.git
          - project: FREE
            repo: acme/free
            clone_url: /nonexistent/free.git
            max_active_tasks: 3
            gates: { serial_gate: false, task_deps: false, coverage_gate: false, post_deploy: false }
        """.write(to: config, atomically: true, encoding: .utf8)
        let app = Application(
            router: HTTPRoutes.router(
                pool: database.pool,
                configuration: try AppConfiguration(environment: [
                    "ORCH_ADMIN_TOKEN": Self.token, "ORCH_CONFIG": config.path, "ORCH_MERGE_GATE_REPOS": "acme/app",
                ])))
        _ = try await tasks.upsert(
            workItem: "FREE-1", repo: "acme/free", title: "free", description: "", labels: ["auto"], track: .full,
            auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
        try await app.test(.router) { client in
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                let body = Self.object(response.body)
                for key in ["serial_gate", "task_deps", "coverage", "post_deploy", "merge_verify"] {
                    let block = body[key] as? [String: Any]
                    XCTAssertEqual(block?["enabled"] as? Bool, true, key)
                    XCTAssertEqual(block?["scope"] as? String, "some", key)
                    XCTAssertEqual(block?["out_of_scope"] as? [String], ["acme/free"], key)
                }
                let gate = body["serial_gate"] as? [String: Any]
                let free = (gate?["repos"] as? [[String: Any]])?.first { $0["repo"] as? String == "acme/free" }
                XCTAssertNotNil(free)
                XCTAssertNil(free?["max_active_tasks"], "no limit out of scope: \(free ?? [:])")
            }
            try await client.execute(
                uri: "/tasks/FREE-1/dependencies", method: .post, headers: Self.auth,
                body: ByteBuffer(string: #"{"depends_on": ["APP-1"]}"#)
            ) { response in
                XCTAssertEqual(response.status, .conflict)
                let error = Self.object(response.body)["error"] as? String ?? ""
                XCTAssertTrue(error.contains("acme/free"), error)
            }
        }
        let edges = try await tasks.dependencies(workItem: "FREE-1")
        XCTAssertEqual(edges.count, 0)
    }
}
