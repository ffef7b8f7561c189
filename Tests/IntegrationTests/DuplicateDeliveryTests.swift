import Foundation
import Store
import TestSupport
import XCTest

@testable import App

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The same webhook delivery sent at the same moment to two running replicas (two real
/// `orchestrator serve` processes on one database): stored once, processed once, one effect.
final class DuplicateDeliveryTests: DatabaseTestCase {
    var servers: [OrchestratorProcess] = []
    let secret = "duplicate-test-secret"

    override var databaseMaxConnections: Int { 12 }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(servers, testFailed: testRun?.hasSucceeded == false)
        servers = []
        try await super.tearDown()
    }

    private func startReplica(_ name: String, config: URL) throws -> URL {
        let (server, base) = try OrchestratorProcess.serving(
            name: name, databaseURL: database.url, role: "all",
            environment: [
                "ORCH_PLANE_WEBHOOK_SECRET": secret, "ORCH_CONFIG": config.path, "ORCH_ADMIN_TOKEN": "t",
                "ORCH_POLL_INTERVAL": "1s",
                // The tasks' first stage fails (the clone URL leads nowhere) and would be held after
                // its retries: spread them far apart so every task is still active when its STOP comes.
                "ORCH_JOB_RETRY_INITIAL": "60s", "ORCH_JOB_RETRY_MAX": "60s",
            ])
        servers.append(server)
        return base
    }

    /// A Plane issue body for work item ORCH-<sequence>, with the given labels.
    private func issueBody(sequence: Int, labels: [String]) throws -> [UInt8] {
        var object =
            try JSONSerialization.jsonObject(with: Data(try WebhookTests.fixture("plane/issue_created.json")))
            as! [String: Any]
        var data = object["data"] as! [String: Any]
        data["sequence_id"] = sequence
        data["id"] = "issue-\(sequence)"
        data["labels"] = labels.map { ["name": $0] }
        object["data"] = data
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    private static func post(_ body: [UInt8], secret: String, to base: URL, session: URLSession) async throws -> Int {
        var request = URLRequest(url: base.appendingPathComponent("webhook/plane"))
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue(
            WebhookSignature.hmacSHA256Hex(secret: secret, body: body), forHTTPHeaderField: "X-Plane-Signature")
        let (_, response) = try await session.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    private func count(_ sql: String) async throws -> Int {
        try await database.pool.query(sql).first!.decode("n")
    }

    func testTheSameDeliveriesSentToTwoReplicasAtOnceHaveOneEffect() async throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-dup-\(UUID().uuidString.prefix(6)).yaml")
        try """
        repos:
          - project: ORCH
            plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544
            repo: acme/orch
            clone_url: /srv/git/orch
        agents:
          default: { command: ["sleep", "60"] }
        """.write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let replicas = [try startReplica("dup-a", config: config), try startReplica("dup-b", config: config)]
        let session = testURLSession()
        for base in replicas {
            let up = await waitUntilAnswering(base.appendingPathComponent("health/ready"))
            XCTAssertTrue(up, "\(base) answers /health/ready")
        }

        // 25 work items created, then each cancelled by its STOP label: every delivery goes to
        // both replicas at the same moment.
        let items = 25
        var rounds: [[[UInt8]]] = [(1...items).map { try! issueBody(sequence: $0, labels: ["auto"]) }]
        rounds.append((1...items).map { try! issueBody(sequence: $0, labels: ["auto", "STOP"]) })
        for bodies in rounds {
            let secret = self.secret
            let statuses = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for (index, body) in bodies.enumerated() {
                    for base in replicas {
                        group.addTask { (index, try await Self.post(body, secret: secret, to: base, session: session)) }
                    }
                }
                return try await group.reduce(into: [Int: [Int]]()) { $0[$1.0, default: []].append($1.1) }
            }
            for index in bodies.indices {
                XCTAssertEqual(statuses[index]?.sorted(), [200, 202], "delivery \(index): one accepted, one duplicate")
            }
            // Wait for both replicas' workers to process what was accepted before the next round.
            let processed = try await waitUntil(timeout: .seconds(60)) {
                try await self.count("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'") == 0
            }
            XCTAssertTrue(processed)
        }

        // A job's completion is written just after its handler marked the delivery processed.
        _ = try await waitUntil(timeout: .seconds(30)) {
            try await self.count(
                "SELECT count(*) AS n FROM jobs WHERE kind = 'process_webhook' AND status <> 'completed'") == 0
        }
        let deliveries = try await count("SELECT count(*) AS n FROM webhook_deliveries")
        let jobs = try await count(
            "SELECT count(*) AS n FROM jobs WHERE kind = 'process_webhook' AND status = 'completed'")
        let tasks = try await count("SELECT count(*) AS n FROM tasks")
        let cancelled = try await count("SELECT count(*) AS n FROM tasks WHERE status = 'cancelled'")
        let cancelEvents = try await count("SELECT count(*) AS n FROM task_events WHERE event = 'cancel'")
        XCTAssertEqual(deliveries, 2 * items, "each delivery stored once")
        XCTAssertEqual(jobs, 2 * items, "each delivery processed by one job")
        XCTAssertEqual(tasks, items, "one task per work item")
        XCTAssertEqual(cancelled, items)
        XCTAssertEqual(cancelEvents, items, "each STOP cancelled its task exactly once")

        // The replicas counted what they did: the duplicates they answered and the jobs they ran.
        var exposition = ""
        for base in replicas {
            var request = URLRequest(url: base.appendingPathComponent("metrics/prometheus"))
            request.setValue("Bearer t", forHTTPHeaderField: "Authorization")
            exposition += String(decoding: try await session.data(for: request).0, as: UTF8.self)
        }
        XCTAssertTrue(
            exposition.contains(#"orch_webhook_deliveries_total{source="plane",outcome="duplicate"}"#), exposition)
        XCTAssertTrue(exposition.contains(#"orch_jobs_total{kind="process_webhook",outcome="completed"}"#), exposition)
    }
}
