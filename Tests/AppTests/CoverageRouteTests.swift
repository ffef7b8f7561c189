import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

/// `POST /coverage/baseline` and the `/queue` `coverage` block, in-process against PostgreSQL,
/// with two repositories configured through `ORCH_CONFIG` (one with a `coverage_command`).
final class CoverageRouteTests: DatabaseTestCase {
    static let token = "coverage-test-token"
    var config: URL!

    override func setUp() async throws {
        try await super.setUp()
        config = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-coverage-\(UUID().uuidString.prefix(8)).yaml")
        try """
        repos:
          - project: APP
            repo: acme/app
            clone_url: /nonexistent/app.git
            coverage_command: ["scripts/coverage.sh"]
            coverage: { policy: ratchet, floor: 60, epsilon: 0.5 }
          - project: LIB
            repo: acme/lib
            clone_url: /nonexistent/lib.git
            coverage: { policy: absolute }
        """.write(to: config, atomically: true, encoding: .utf8)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: config)
        try await super.tearDown()
    }

    private func app(coverageGate: Bool = true) throws -> some ApplicationProtocol {
        Application(
            router: HTTPRoutes.router(
                pool: database.pool,
                configuration: try AppConfiguration(environment: [
                    "ORCH_ADMIN_TOKEN": Self.token, "ORCH_CONFIG": config.path,
                    "ORCH_COVERAGE_GATE_ENABLED": coverageGate ? "1" : "0",
                ])))
    }

    private static var auth: HTTPFields {
        var fields = HTTPFields()
        fields[.authorization] = "Bearer \(token)"
        return fields
    }

    private static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    /// APP-1 measured `percent` and merged as `m1`: acme/app's baseline rises to it.
    private func mergeMeasured(_ percent: Double) async throws {
        try await CoverageStore(pool: database.pool).record(
            workItem: "APP-1", repo: "acme/app", percent: percent, headSHA: "h1", passed: true)
        _ = try await database.pool.withTransaction { connection in
            try await CoverageStore.raiseBaseline(workItem: "APP-1", mergeSHA: "m1", on: connection)
        }
    }

    func testAnOperatorSetsAndLowersTheBaseline() async throws {
        let coverage = CoverageStore(pool: database.pool)
        try await mergeMeasured(91)
        try await app().test(.router) { client in
            try await client.execute(
                uri: "/coverage/baseline?repo=acme/app&value=72.5", method: .post, headers: Self.auth
            ) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["ok"] as? Bool, true)
                XCTAssertEqual(body["repo"] as? String, "acme/app")
                XCTAssertEqual(body["baseline"] as? Double, 72.5)
            }
            try await client.execute(uri: "/coverage/baseline?repo=acme/app&value=72.5", method: .post) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
        }
        let baseline = try await coverage.baseline(repo: "acme/app")
        XCTAssertEqual(baseline?.baseline, 72.5, "lowered from 91")
        XCTAssertEqual(baseline?.setBy, .operator)
    }

    func testMissingOrBadParametersAreRefused() async throws {
        let cases: [(String, HTTPResponse.Status, String)] = [
            ("value=50", .badRequest, "missing 'repo'"),
            ("repo=&value=50", .badRequest, "missing 'repo'"),
            ("repo=acme/app", .badRequest, "missing 'value'"),
            ("repo=acme/app&value=lots", .badRequest, "'value' must be a percentage from 0 to 100, got 'lots'"),
            ("repo=acme/app&value=100.5", .badRequest, "'value' must be a percentage from 0 to 100, got '100.5'"),
            ("repo=acme/app&value=-1", .badRequest, "'value' must be a percentage from 0 to 100, got '-1'"),
            ("repo=acme/app&value=nan", .badRequest, "'value' must be a percentage from 0 to 100, got 'nan'"),
            ("repo=acme/nope&value=50", .notFound, "unknown repository 'acme/nope' (not in ORCH_CONFIG repos)"),
        ]
        try await app().test(.router) { client in
            for (query, status, error) in cases {
                try await client.execute(uri: "/coverage/baseline?\(query)", method: .post, headers: Self.auth) {
                    response in
                    XCTAssertEqual(response.status, status, query)
                    let body = Self.object(response.body)
                    XCTAssertEqual(body["ok"] as? Bool, false, query)
                    XCTAssertEqual(body["error"] as? String, error, query)
                }
            }
        }
        let baselines = try await CoverageStore(pool: database.pool).baselines()
        XCTAssertEqual(baselines.count, 0, "nothing was set")
    }

    func testTheQueueCoverageBlock() async throws {
        try await mergeMeasured(80)
        for enabled in [true, false] {
            try await app(coverageGate: enabled).test(.router) { client in
                try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                    XCTAssertEqual(response.status, .ok)
                    let block = Self.object(response.body)["coverage"] as? [String: Any]
                    XCTAssertEqual(block?["enabled"] as? Bool, enabled)
                    XCTAssertEqual(block?["scope"] as? String, "all")
                    let repos = block?["repos"] as? [[String: Any]] ?? []
                    XCTAssertEqual(repos.map { $0["repo"] as? String }, ["acme/app", "acme/lib"])
                    let app = repos.first ?? [:]
                    XCTAssertEqual(app["policy"] as? String, "ratchet")
                    XCTAssertEqual(app["floor"] as? Double, 60)
                    XCTAssertEqual(app["epsilon"] as? Double, 0.5)
                    XCTAssertEqual(app["coverage_command_set"] as? Bool, true)
                    let baseline = app["baseline"] as? [String: Any]
                    XCTAssertEqual(baseline?["value"] as? Double, 80)
                    XCTAssertEqual(baseline?["set_by"] as? String, "merge")
                    XCTAssertEqual(baseline?["commit_sha"] as? String, "m1")
                    XCTAssertEqual(baseline?["work_item"] as? String, "APP-1")
                    XCTAssertNotNil(baseline?["updated_at"] as? String)
                    let lib = repos.last ?? [:]
                    XCTAssertEqual(lib["policy"] as? String, "absolute")
                    XCTAssertEqual(lib["floor"] as? Double, 0)
                    XCTAssertEqual(lib["epsilon"] as? Double, 0.1)
                    XCTAssertEqual(lib["coverage_command_set"] as? Bool, false)
                    XCTAssertNil(lib["baseline"], "no baseline yet")
                }
            }
        }
    }
}
