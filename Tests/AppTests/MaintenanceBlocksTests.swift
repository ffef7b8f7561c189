import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

/// `GET /queue` shows the reconciler's, the disk watchdog's and the build-cache pruner's blocks,
/// read from the database, so any replica answers the same.
final class MaintenanceBlocksTests: DatabaseTestCase {
    static let token = "admin-test-token"

    func testTheBlocksShowSettingsAndTheLastRuns() async throws {
        try await MaintenanceStore(pool: database.pool).record(
            duty: "reconcile", replicaID: "replica-1", affected: 2, error: nil)
        try await MaintenanceStore(pool: database.pool).record(
            duty: "reconcile", replicaID: "replica-1", affected: 1, error: nil)
        _ = try await DiskMonitorStore(pool: database.pool).record(
            host: "host-a", path: "/srv/orch", replicaID: "replica-1", usedPercent: 93.5, totalBytes: 1000,
            freeBytes: 65, threshold: 90, hysteresis: 5)
        try await BuildCachePruneStore(pool: database.pool).record(
            replicaID: "replica-1", duration: .milliseconds(1500), exitStatus: 0, reclaimedBytes: 1_500_000_000,
            error: nil)
        let configuration = try AppConfiguration(environment: [
            "ORCH_ADMIN_TOKEN": Self.token, "ORCH_RECONCILE_INTERVAL": "30s", "ORCH_BUILD_CACHE_PRUNE_ENABLED": "1",
            "ORCH_BUILD_CACHE_PRUNE_COMMAND": "docker builder prune -af",
        ])
        let app = Application(router: HTTPRoutes.router(pool: database.pool, configuration: configuration))
        try await app.test(.router) { client in
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(Self.token)"
            try await client.execute(uri: "/queue", method: .get, headers: headers) { response in
                XCTAssertEqual(response.status, .ok)
                let body = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any]
                let reconcile = body?["reconcile"] as? [String: Any]
                XCTAssertEqual(reconcile?["enabled"] as? Bool, true)
                XCTAssertEqual(reconcile?["interval_seconds"] as? Double, 30)
                XCTAssertEqual(reconcile?["last_repaired"] as? Int, 1)
                XCTAssertEqual(reconcile?["total_repaired"] as? Int, 3)
                XCTAssertEqual(reconcile?["runs"] as? Int, 2)
                XCTAssertNotNil(reconcile?["last_run_at"])
                let reaperDuties = (body?["reaper"] as? [String: Any])?["duties"] as? [String: Any]
                XCTAssertNil(reaperDuties?["reconcile"], "the reconciler's runs are in its own block only")
                let disk = body?["disk_monitor"] as? [String: Any]
                XCTAssertEqual(disk?["threshold_percent"] as? Double, 90)
                let paths = disk?["paths"] as? [[String: Any]]
                XCTAssertEqual(paths?.first?["path"] as? String, "/srv/orch")
                XCTAssertEqual(paths?.first?["used_percent"] as? Double, 93.5)
                XCTAssertEqual(paths?.first?["above"] as? Bool, true)
                let prune = body?["build_cache_prune"] as? [String: Any]
                XCTAssertEqual(prune?["enabled"] as? Bool, true)
                XCTAssertEqual(prune?["command"] as? [String], ["docker", "builder", "prune", "-af"])
                let last = prune?["last_run"] as? [String: Any]
                XCTAssertEqual(last?["exit_status"] as? Int, 0)
                XCTAssertEqual(last?["reclaimed_bytes"] as? Int, 1_500_000_000)
            }
        }
    }

    func testTheReaperShowsEveryReplicasDutiesAndTheLessonsBlockItsSettings() async throws {
        try await MaintenanceStore(pool: database.pool).record(
            duty: "merge-lease-sweep", replicaID: "replica-1", affected: 1, error: nil)
        let replicaRuns = ReplicaMaintenanceStore(pool: database.pool)
        for (name, affected) in [("node-a", 3), ("node-b", 0)] {
            try await replicaRuns.record(
                duty: "worktree-prune", name: name, host: "host-\(name)", replicaID: "\(name)-1", affected: affected,
                error: nil)
        }
        try await replicaRuns.record(
            duty: "agent-log-prune", name: "node-a", host: "host-node-a", replicaID: "node-a-1", affected: 12,
            error: nil)
        let configuration = try AppConfiguration(environment: [
            "ORCH_ADMIN_TOKEN": Self.token, "ORCH_REAPER_ENABLED": "0", "ORCH_WORKTREE_RETENTION": "2d",
            "ORCH_AGENT_LOG_RETENTION": "12h", "ORCH_LESSONS_ENABLED": "0", "ORCH_LESSONS_DEDUP_WINDOW": "15m",
        ])
        let app = Application(router: HTTPRoutes.router(pool: database.pool, configuration: configuration))
        try await app.test(.router) { client in
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(Self.token)"
            try await client.execute(uri: "/queue", method: .get, headers: headers) { response in
                XCTAssertEqual(response.status, .ok)
                let body = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any]
                let reaper = body?["reaper"] as? [String: Any]
                XCTAssertEqual(reaper?["enabled"] as? Bool, false)
                XCTAssertEqual(reaper?["worktree_retention_hours"] as? Double, 48)
                XCTAssertEqual(reaper?["agent_log_retention_hours"] as? Double, 12)
                let sweep = (reaper?["duties"] as? [String: [String: Any]])?["merge-lease-sweep"]
                XCTAssertEqual(sweep?["last_affected"] as? Int, 1)
                let perReplica = reaper?["replica_duties"] as? [String: [[String: Any]]]
                let worktrees = perReplica?["worktree-prune"] ?? []
                XCTAssertEqual(worktrees.map { $0["name"] as? String }, ["node-a", "node-b"])
                XCTAssertEqual(worktrees.first?["host"] as? String, "host-node-a")
                XCTAssertEqual(worktrees.first?["replica"] as? String, "node-a-1")
                XCTAssertEqual(worktrees.first?["last_affected"] as? Int, 3)
                XCTAssertNotNil(worktrees.first?["last_run_at"])
                XCTAssertEqual(perReplica?["agent-log-prune"]?.first?["total_affected"] as? Int, 12)
                let lessons = body?["lessons"] as? [String: Any]
                XCTAssertEqual(lessons?["enabled"] as? Bool, false)
                XCTAssertEqual(lessons?["dedup_window_seconds"] as? Double, 900)
                XCTAssertNotNil(lessons?["by_status"])
            }
        }
    }
}
