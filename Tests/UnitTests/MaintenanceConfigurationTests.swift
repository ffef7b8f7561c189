import Foundation
import Logging
import Store
import Workers
import XCTest

@testable import App

/// The reconciler's, disk watchdog's and build-cache pruner's settings: defaults, clear errors,
/// and the kill switches deciding which leader duties exist.
final class MaintenanceConfigurationTests: XCTestCase {
    func testTheDefaults() throws {
        let configuration = try AppConfiguration(environment: ["ORCH_WORKDIR": "/srv/orch"])
        XCTAssertTrue(configuration.reconcileEnabled)
        XCTAssertEqual(configuration.reconcileInterval, .seconds(60))
        XCTAssertTrue(configuration.diskMonitorEnabled)
        XCTAssertEqual(configuration.diskMonitor.paths, ["/srv/orch"])
        XCTAssertEqual(configuration.diskMonitor.threshold, 90)
        XCTAssertEqual(configuration.diskMonitor.interval, .seconds(60))
        XCTAssertFalse(configuration.buildCachePruneEnabled)
        XCTAssertEqual(configuration.buildCachePrune.interval, .seconds(86400))
        XCTAssertEqual(configuration.buildCachePrune.timeout, .seconds(600))
        XCTAssertTrue(configuration.reaperEnabled)
        XCTAssertEqual(configuration.worktreeRetention, .seconds(7 * 86400))
        XCTAssertEqual(configuration.agentLogRetention, .seconds(14 * 86400))
    }

    func testTheRetentionsOfTheReapersFileDuties() throws {
        let configuration = try AppConfiguration(environment: [
            "ORCH_WORKTREE_RETENTION": "36h", "ORCH_AGENT_LOG_RETENTION": "30d",
        ])
        XCTAssertEqual(configuration.worktreeRetention, .seconds(36 * 3600))
        XCTAssertEqual(configuration.agentLogRetention, .seconds(30 * 86400))
        for key in ["ORCH_WORKTREE_RETENTION", "ORCH_AGENT_LOG_RETENTION"] {
            for bad in ["0", "soon", "-1d"] {
                XCTAssertThrowsError(try AppConfiguration(environment: [key: bad]), "\(key)=\(bad)") { error in
                    XCTAssertTrue("\(error)".contains(key), "\(error)")
                }
            }
        }
    }

    func testValuesAndTheirErrors() throws {
        let configuration = try AppConfiguration(environment: [
            "ORCH_DISK_MONITOR_PATHS": "/a, /b ,", "ORCH_DISK_MONITOR_THRESHOLD": "85.5",
            "ORCH_BUILD_CACHE_PRUNE_ENABLED": "1",
            "ORCH_BUILD_CACHE_PRUNE_COMMAND": #"["sh", "-c", "docker builder prune -af"]"#,
        ])
        XCTAssertEqual(configuration.diskMonitor.paths, ["/a", "/b"])
        XCTAssertEqual(configuration.diskMonitor.threshold, 85.5)
        XCTAssertEqual(configuration.buildCachePrune.command, ["sh", "-c", "docker builder prune -af"])
        let words = try AppConfiguration(environment: ["ORCH_BUILD_CACHE_PRUNE_COMMAND": "docker  builder prune -af"])
        XCTAssertEqual(words.buildCachePrune.command, ["docker", "builder", "prune", "-af"])

        let wrong: [([String: String], String)] = [
            (["ORCH_DISK_MONITOR_THRESHOLD": "150"], "ORCH_DISK_MONITOR_THRESHOLD"),
            (["ORCH_DISK_MONITOR_PATHS": " , "], "ORCH_DISK_MONITOR_PATHS"),
            (["ORCH_BUILD_CACHE_PRUNE_ENABLED": "1"], "ORCH_BUILD_CACHE_PRUNE_COMMAND"),
            (["ORCH_BUILD_CACHE_PRUNE_COMMAND": "[\"docker\", 3]"], "ORCH_BUILD_CACHE_PRUNE_COMMAND"),
            (["ORCH_RECONCILE_INTERVAL": "200ms"], "ORCH_RECONCILE_INTERVAL"),
            (["ORCH_RECONCILE_ENABLED": "maybe"], "ORCH_RECONCILE_ENABLED"),
        ]
        for (environment, key) in wrong {
            XCTAssertThrowsError(try AppConfiguration(environment: environment), "\(environment)") { error in
                XCTAssertTrue("\(error)".contains(key), "\(error)")
            }
        }
    }

    func testTheKillSwitchesDecideTheLeaderDuties() async throws {
        let pool = ConnectionPool(
            configuration: DatabaseConfiguration(connectionString: nil, applicationName: "test", maxConnections: 2),
            logger: Logger(label: "test"))
        func duties(_ environment: [String: String]) throws -> [String] {
            ReplicaRuntime.maintenanceDuties(
                configuration: try AppConfiguration(environment: environment), pool: pool, replicaID: "r",
                alerts: .off, logger: Logger(label: "test")
            ).map(\.name)
        }
        let standard = try duties([:])
        XCTAssertTrue(standard.contains(Reconciler.dutyName), "\(standard)")
        XCTAssertTrue(standard.contains(QueueMaintenance.strandedTaskDuty), "\(standard)")
        XCTAssertFalse(standard.contains(BuildCachePruner.duty), "off by default")
        let off = try duties(["ORCH_RECONCILE_ENABLED": "0"])
        XCTAssertFalse(off.contains(Reconciler.dutyName), "\(off)")
        XCTAssertTrue(off.contains(QueueMaintenance.strandedTaskDuty), "the backstop stays")
        let pruning = try duties(["ORCH_BUILD_CACHE_PRUNE_ENABLED": "on", "ORCH_BUILD_CACHE_PRUNE_COMMAND": "true"])
        XCTAssertTrue(pruning.contains(BuildCachePruner.duty), "\(pruning)")
        let reaperDuties = [
            "rescue", QueueMaintenance.strandedTaskDuty, "replica-sweep", "prune", QueueMaintenance.mergeLeaseSweepDuty,
            QueueMaintenance.webhookPruneDuty, AgentOrphans.dutyName,
        ]
        XCTAssertEqual(Set(reaperDuties).subtracting(standard), [], "the reaper's duties run by default: \(standard)")
        let noReaper = try duties(["ORCH_REAPER_ENABLED": "0"])
        XCTAssertEqual(Set(reaperDuties).intersection(noReaper), [], "\(noReaper)")
        XCTAssertTrue(noReaper.contains(Reconciler.dutyName), "the other duties have their own switches")
        await pool.close()
    }

    func testTheReaperSwitchDecidesTheEveryReplicaDutiesAndTheStartupSteps() async throws {
        let pool = ConnectionPool(
            configuration: DatabaseConfiguration(connectionString: nil, applicationName: "test", maxConnections: 2),
            logger: Logger(label: "test"))
        let identity = ReplicaIdentity(id: "r-1", name: "r", host: "h", pid: 1, role: "all")
        func parts(_ environment: [String: String]) throws -> (reaper: ReplicaReaper?, steps: [String]) {
            let configuration = try AppConfiguration(environment: environment)
            let sweeper = WorkspaceSweeper(
                workspace: Workspace(root: "/nonexistent"), repos: [], pool: pool, logger: Logger(label: "test"))
            let reaper = ReplicaRuntime.replicaReaper(
                configuration: configuration, sweeper: sweeper, identity: identity, pool: pool,
                logger: Logger(label: "test"))
            let steps = ReplicaRuntime.startupSteps(
                configuration: configuration, identity: identity, pool: pool, alerts: .off, reaper: reaper,
                fileOwnership: nil,
                logger: Logger(label: "test"))
            return (reaper, steps.map(\.name))
        }
        let order = ["lease reclaim", "orphan recovery", "log rotation", "worktree prune", "ownership check"]
        let on = try parts([:])
        XCTAssertNotNil(on.reaper)
        XCTAssertEqual(on.steps, order)
        let off = try parts(["ORCH_REAPER_ENABLED": "0"])
        XCTAssertNil(off.reaper, "no replica prunes its files")
        XCTAssertEqual(off.steps, order, "every step still logs its line, skipped or not")
        await pool.close()
    }
}
