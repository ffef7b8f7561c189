import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Workers

/// The reaper's every-replica duties on a real workspace and database: `worktree-prune` removes
/// only worktrees of tasks ended longer ago than the retention, `agent-log-prune` only old logs
/// (with their patches), and each run is recorded per replica.
final class ReplicaReaperTests: DatabaseTestCase {
    var root: URL!

    override func setUp() async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-reaper-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try await super.setUp()
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: root)
        try await super.tearDown()
    }

    private var logs: String { root.appendingPathComponent("work/logs").path }

    /// A workspace over a local remote, and the reaper of replica `node-a` over it.
    private func reaper(
        worktreeRetention: Duration = .seconds(7 * 86400)
    ) throws -> (Workspace, RepositorySettings, ReplicaReaper) {
        let remote = try makeBareRemote(in: root, readme: "hello\n")
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: remote.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        let workspace = Workspace(root: root.appendingPathComponent("work").path)
        let sweeper = WorkspaceSweeper(workspace: workspace, repos: [repo], pool: database.pool, logger: testLogger)
        let identity = ReplicaIdentity(id: "node-a-1", name: "node-a", host: "host-1", pid: 1, role: "all")
        let reaper = ReplicaReaper(
            settings: .init(
                worktreeRetention: worktreeRetention, logDirectory: logs, logRetention: .seconds(14 * 86400),
                maxLogs: 100),
            sweeper: sweeper,
            recorder: ReplicaDutyRecorder(pool: database.pool, identity: identity, logger: testLogger),
            logger: testLogger)
        return (workspace, repo, reaper)
    }

    /// Creates an empty file at `path` last modified `days` ago.
    private func plant(_ path: String, days: Double) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-days * 86400)], ofItemAtPath: path)
    }

    private func record(_ duty: String) async throws -> ReplicaMaintenanceStore.Run? {
        try await ReplicaMaintenanceStore(pool: database.pool).runs().first { $0.duty == duty }
    }

    func testWorktreePruneRemovesOnlyWorktreesOfTasksEndedLongerThanTheRetention() async throws {
        let (workspace, repo, reaper) = try reaper()
        let tasks = TaskStore(pool: database.pool)
        let items = ["ORCH-1", "ORCH-2", "ORCH-3", "ORCH-4", "ORCH-5"]
        for workItem in items {
            _ = try await workspace.prepare(repo, workItem: workItem)
            if workItem != "ORCH-5" {
                _ = try await tasks.upsert(
                    workItem: workItem, repo: repo.repo, title: workItem, description: "", labels: [], track: .full,
                    auto: false, planeIssueID: nil, planeProjectID: nil, planeState: nil)
            }
        }
        // ORCH-1 ended long ago, ORCH-2 ended yesterday, ORCH-3 is still going (but untouched for
        // a month), ORCH-4 is held; ORCH-5 has no task row at all.
        try await database.pool.query(
            """
            UPDATE tasks SET status = v.status, updated_at = now() - make_interval(days => v.days)
            FROM (VALUES ('ORCH-1', 'cancelled', 8), ('ORCH-2', 'failed', 1), ('ORCH-3', 'active', 30),
                         ('ORCH-4', 'held', 30)) AS v(work_item, status, days)
            WHERE tasks.work_item = v.work_item
            """)

        let removed = try await reaper.pruneWorktrees()

        XCTAssertEqual(removed, 1)
        for workItem in items {
            let exists = FileManager.default.fileExists(atPath: workspace.worktreePath(repo, workItem: workItem))
            XCTAssertEqual(exists, workItem != "ORCH-1", workItem)
        }
        let run = try await record(ReplicaReaper.worktreePruneDuty)
        XCTAssertEqual(run?.name, "node-a")
        XCTAssertEqual(run?.host, "host-1")
        XCTAssertEqual(run?.replicaID, "node-a-1")
        XCTAssertEqual(run?.lastAffected, 1)
        XCTAssertEqual(run?.runs, 1)

        // The failed task's retention ends: its worktree goes on the next run, the others stay.
        try await database.pool.query(
            "UPDATE tasks SET updated_at = now() - interval '8 days' WHERE work_item = 'ORCH-2'")
        let second = try await reaper.pruneWorktrees()
        XCTAssertEqual(second, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace.worktreePath(repo, workItem: "ORCH-2")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: workspace.worktreePath(repo, workItem: "ORCH-3")))
        let total = try await record(ReplicaReaper.worktreePruneDuty)
        XCTAssertEqual(total?.totalAffected, 2)
        XCTAssertEqual(total?.runs, 2)
    }

    func testAgentLogPruneDeletesOldLogsWithTheirPatchesAndRecordsTheCount() async throws {
        let (_, _, reaper) = try reaper()
        try plant(logs + "/old.log", days: 20)
        try plant(logs + "/old.log.patch", days: 20)
        try plant(logs + "/recent.log", days: 1)
        try plant(logs + "/recent.log.patch", days: 1)
        try plant(logs + "/lost.log.patch", days: 30)
        try plant(logs + "/notes.txt", days: 90)

        let deleted = try await reaper.pruneLogs()

        XCTAssertEqual(deleted, 3)
        let left = try FileManager.default.contentsOfDirectory(atPath: logs).sorted()
        XCTAssertEqual(left, ["notes.txt", "recent.log", "recent.log.patch"])
        let run = try await record(ReplicaReaper.agentLogPruneDuty)
        XCTAssertEqual(run?.lastAffected, 3)
    }
}
