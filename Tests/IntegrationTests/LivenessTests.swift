import Foundation
import Store
import TestSupport
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Liveness never starves: the heartbeat and readiness have database sessions of their own.
final class LivenessTests: DatabaseTestCase {
    var servers: [OrchestratorProcess] = []

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(servers, testFailed: testRun?.hasSucceeded == false)
        try await super.tearDown()
    }

    func testTheHeartbeatKeepsItsTTLWhileThePoolIsSaturatedAndReadinessIsFlooded() async throws {
        let token = "liveness-admin"
        let (server, base) = try OrchestratorProcess.serving(
            name: "liveness", databaseURL: database.url, role: "all",
            environment: ["ORCH_ADMIN_TOKEN": token, "ORCH_DB_POOL_SIZE": "2", "ORCH_MAX_CONCURRENCY": "1"])
        servers.append(server)
        let up = await waitUntilAnswering(base.appendingPathComponent("health/ready"))
        XCTAssertTrue(up)
        let replicas = ReplicaStore(pool: database.pool)
        let registered = try await waitUntil(timeout: .seconds(10)) { try await !replicas.live().isEmpty }
        XCTAssertTrue(registered)
        let id = try await replicas.live().first?.id

        // Separate clients: one URLSession's per-host connection limit would queue the readiness
        // flood behind the stuck admin requests on the client side.
        let session = testURLSession()
        let flooder = testURLSession()
        let ttl = 3.0
        // Measured with the test's own pool: the replica's heartbeat age, by the database clock.
        let probe = database.makePool(maxConnections: 1, applicationName: "liveness-probe")
        // Every admin request below waits on this lock while holding one of the replica's two
        // pooled connections: the pool is saturated by slow queries for the whole window.
        let (maxAge, readyAnswers) = try await database.pool.withTransaction { connection in
            try await connection.query("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            return try await withThrowingTaskGroup(of: (Double, Int).self) { group in
                let deadline = ContinuousClock.now.advanced(by: .seconds(8))
                for _ in 0..<6 {
                    group.addTask {
                        var request = URLRequest(url: base.appendingPathComponent("status"))
                        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                        request.timeoutInterval = 10
                        _ = try? await session.data(for: request)
                        return (0, 0)
                    }
                }
                group.addTask {
                    var answers = 0
                    while ContinuousClock.now < deadline {
                        await withTaskGroup(of: Bool.self) { flood in
                            for _ in 0..<20 {
                                flood.addTask {
                                    let response = try? await flooder.data(
                                        from: base.appendingPathComponent("health/ready")
                                    ).1
                                    return (response as? HTTPURLResponse)?.statusCode == 200
                                }
                            }
                            for await ok in flood where ok { answers += 1 }
                        }
                    }
                    return (0, answers)
                }
                group.addTask {
                    var worst = 0.0
                    while ContinuousClock.now < deadline {
                        let row = try await probe.query(
                            "SELECT max(extract(epoch FROM now() - heartbeat_at))::float8 AS age FROM replicas WHERE stopped_at IS NULL"
                        )
                        worst = max(worst, try row.first?.decode("age", as: Double?.self) ?? 0)
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    return (worst, 0)
                }
                var worst = 0.0
                var answers = 0
                for try await (age, ready) in group {
                    worst = max(worst, age)
                    answers += ready
                }
                return (worst, answers)
            }
        }
        await probe.close()
        XCTAssertLessThan(maxAge, ttl, "the heartbeat kept coming while the pool was saturated (worst age \(maxAge) s)")
        XCTAssertGreaterThan(readyAnswers, 20, "readiness answered during the flood")
        let live = try await replicas.live()
        XCTAssertEqual(
            live.map(\.id), [id].compactMap { $0 }, "the replica was never marked stopped (it would have a new id)")
    }
}
