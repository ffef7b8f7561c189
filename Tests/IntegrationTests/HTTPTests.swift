import Foundation
import Hummingbird
import HummingbirdTesting
import Store
import TestSupport
import XCTest

@testable import App

final class HTTPTests: XCTestCase {
    func testHealthNeedsNoDatabase() async throws {
        let pool = ConnectionPool(
            configuration: DatabaseConfiguration(connectionString: "postgresql://postgres@127.0.0.1:1/none"),
            logger: testLogger)
        defer { Task { await pool.close() } }
        let app = Application(
            router: HTTPRoutes.router(pool: pool, configuration: try AppConfiguration(environment: [:])))
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: String]
                XCTAssertEqual(body, ["status": "ok", "service": "orchestrator"])
            }
            // Readiness checks the database: down → 503 with the seed's error shape.
            try await client.execute(uri: "/health/ready", method: .get) { response in
                XCTAssertEqual(response.status, .serviceUnavailable)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                XCTAssertEqual(body?["ok"] as? Bool, false)
                XCTAssertEqual(body?["error"] as? String, "database unavailable")
            }
        }
    }

    func testReadyWhenTheDatabaseAnswers() async throws {
        try await withTestDatabase(suite: "http", migrate: false) { database in
            let app = Application(
                router: HTTPRoutes.router(pool: database.pool, configuration: try AppConfiguration(environment: [:])))
            try await app.test(.router) { client in
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    XCTAssertEqual(response.status, .ok)
                    let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: String]
                    XCTAssertEqual(body, ["status": "ready", "database": "ok"])
                }
            }
        }
    }
}

final class ConfigurationTests: XCTestCase {
    func testDefaultsAndOverrides() throws {
        let defaults = try AppConfiguration(environment: [:])
        XCTAssertEqual(defaults.host, "0.0.0.0")
        XCTAssertEqual(defaults.port, 8080)
        XCTAssertEqual(defaults.maxConcurrency, 4)
        XCTAssertEqual(defaults.heartbeatTTL, .seconds(15))
        let custom = try AppConfiguration(environment: [
            "ORCH_PORT": "9090", "ORCH_MAX_CONCURRENCY": "12", "ORCH_POLL_INTERVAL": "250ms",
            "ORCH_HEARTBEAT_INTERVAL": "2s",
            "ORCH_QUEUES": "default, merges",
        ])
        XCTAssertEqual(custom.port, 9090)
        XCTAssertEqual(custom.maxConcurrency, 12)
        XCTAssertEqual(custom.pollInterval, .milliseconds(250))
        XCTAssertEqual(custom.heartbeatTTL, .seconds(6))
        XCTAssertEqual(custom.queues, ["default", "merges"])
    }

    func testInvalidValuesNameTheKey() {
        let cases: [(String, String)] = [
            ("ORCH_PORT", "eighty"), ("ORCH_PORT", "70000"), ("ORCH_MAX_CONCURRENCY", "0"),
            ("ORCH_POLL_INTERVAL", "soon"),
            ("ORCH_DIAGNOSTIC_JOBS", "maybe"), ("ORCH_LOG_LEVEL", "loud"), ("ORCH_HEARTBEAT_TTL", "1s"),
        ]
        for (key, value) in cases {
            XCTAssertThrowsError(try AppConfiguration(environment: [key: value]), "\(key)=\(value)") { error in
                XCTAssertTrue("\(error)".contains(key), "\(error)")
            }
        }
    }

    func testATTLTheHeartbeatCannotGuaranteeIsRefused() throws {
        // Two beats plus one beat's timeout (TTL/3, at most an interval) must fit in the TTL.
        XCTAssertThrowsError(
            try AppConfiguration(environment: ["ORCH_HEARTBEAT_INTERVAL": "5s", "ORCH_HEARTBEAT_TTL": "12s"])
        ) {
            XCTAssertTrue("\($0)".contains("at least 3 × ORCH_HEARTBEAT_INTERVAL"), "\($0)")
        }
        let accepted = try AppConfiguration(environment: ["ORCH_HEARTBEAT_INTERVAL": "5s", "ORCH_HEARTBEAT_TTL": "15s"])
        XCTAssertEqual(accepted.heartbeatTimeout, .seconds(5))
        let slow = try AppConfiguration(environment: ["ORCH_HEARTBEAT_INTERVAL": "1s", "ORCH_HEARTBEAT_TTL": "120s"])
        XCTAssertEqual(slow.heartbeatTimeout, .seconds(1), "a beat never takes longer than an interval")
    }

    func testTheBinaryRefusesToStartOnBadConfiguration() async throws {
        let process = try OrchestratorProcess(
            name: "badconfig", databaseURL: "postgresql://postgres@127.0.0.1:1/none", arguments: ["serve"],
            environment: ["ORCH_PORT": "not-a-port"])
        let value1 = await process.waitForExit(timeout: .seconds(10))
        XCTAssertTrue(value1)
        XCTAssertNotEqual(process.process.terminationStatus, 0)
        XCTAssertTrue(process.output.contains("ORCH_PORT"), process.output)
    }
}
