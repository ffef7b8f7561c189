import Foundation
import Store
import TestSupport
import XCTest

/// A real `orchestrator` process starting where its previous life left work behind: before it
/// serves, its startup housekeeping reclaims that life's leases, closes its orphaned agent run,
/// rotates old agent logs and prunes worktrees — and logs each step exactly once, with counts.
final class StartupHousekeepingTests: ReplicaProcessTestCase {
    override var workdirPrefix: String { "orch-housekeeping" }

    /// Lines of `output` that carry `message`.
    private func lines(_ output: String, _ message: String) -> [Substring] {
        output.split(separator: "\n").filter {
            $0.hasSuffix(message) || $0.contains(message + " ") || $0.contains(message + ":")
        }
    }

    func testEachStartupStepIsLoggedOnceWithWhatItDid() async throws {
        let host = ProcessInfo.processInfo.hostName
        let previous = "house-0ld0ld00"
        // The previous life of replica "house" on this host: silent for an hour (dead), with a job
        // still leased to it (in a queue nobody claims, so it stays where the reclaim puts it), a
        // merge-lease row whose lock is long gone, and an agent run it never closed.
        try await ReplicaStore(pool: database.pool).register(
            id: previous, name: "house", host: host, pid: 999_999, role: "worker")
        try await database.pool.query(
            "UPDATE replicas SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [previous])
        let jobs = JobStore(pool: database.pool)
        let job = try await jobs.enqueue(NewJob(kind: "k", queue: "parked"))!
        _ = try await jobs.claim(queues: ["parked"], replicaID: previous, limit: 1, lease: .seconds(3600))
        try await database.pool.query(
            "INSERT INTO merge_leases (repo, work_item, replica_id, backend_pid) VALUES ('acme/orch', 'ORCH-1', $1, 999999)",
            [previous])
        _ = try await AgentRunStore(pool: database.pool).begin(
            .init(
                workItem: nil, jobID: nil, stage: nil, role: "developer", replicaID: previous, host: host,
                command: ["agent"], logPath: nil))
        // One agent log past the retention (14 days by default), one recent.
        let logs = workdir.appendingPathComponent("logs")
        for (name, days) in [("old.log", 20.0), ("recent.log", 1.0)] {
            let path = logs.appendingPathComponent(name).path
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
            try FileManager.default.setAttributes(
                [.modificationDate: Date().addingTimeInterval(-days * 86400)], ofItemAtPath: path)
        }

        let process = try OrchestratorProcess(
            name: "house", databaseURL: database.url,
            environment: [
                "ORCH_WORKDIR": workdir.path, "ORCH_RECONCILE_INTERVAL": "1s", "ORCH_DISK_MONITOR_ENABLED": "0",
            ])
        processes.append(process)
        // Well past the start: the replica leads and its reconciler has run twice since.
        let settled = try await waitUntil(timeout: .seconds(30)) {
            try await MaintenanceStore(pool: self.database.pool).runs().first { $0.duty == "reconcile" }?.runs ?? 0
                >= 2
        }
        XCTAssertTrue(settled, "the replica started and leads")

        let output = process.output
        let expected: [(step: String, says: [String])] = [
            ("lease reclaim", ["jobs.reclaimed=1", "merge_leases.removed=1"]),
            ("orphan recovery", ["agent_runs.closed=1", "agent.killed=0"]),
            ("log rotation", ["logs.pruned=1"]),
            ("worktree prune", ["worktrees.pruned=0"]),
            ("ownership check", ["file ownership checked", "fs.mismatched=0"]),
        ]
        for (step, says) in expected {
            let found = lines(output, "startup housekeeping: \(step)")
            XCTAssertEqual(found.count, 1, "\(step) logged once: \(found)")
            for fact in says {
                XCTAssertTrue(found.first?.contains(fact) == true, "\(step) says \(fact): \(found)")
            }
        }
        // Before serving: every step is logged before the replica says it is starting.
        let starting = try XCTUnwrap(output.range(of: "replica starting"))
        let lastStep = try XCTUnwrap(output.range(of: "startup housekeeping: ownership check"))
        XCTAssertLessThan(lastStep.lowerBound, starting.lowerBound)

        let reclaimed = try await jobs.job(id: job)
        XCTAssertEqual(reclaimed?.status, .queued)
        let leases = try await database.pool.query("SELECT count(*) AS n FROM merge_leases").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(leases, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: logs.path), ["recent.log"])
        let records = try await ReplicaMaintenanceStore(pool: database.pool).runs()
        XCTAssertEqual(
            Dictionary(uniqueKeysWithValues: records.map { ($0.duty, $0.lastAffected) }),
            ["lease-reclaim": 2, "agent-log-prune": 1, "worktree-prune": 0])
        XCTAssertEqual(Set(records.map(\.name)), ["house"])
    }
}
