import Foundation
import Store
import TestSupport
import XCTest

/// Leader-only duties with two real replicas: the reaper's `rescue` runs on exactly one of them
/// (every run counted), and when that leader is killed it moves to the other within a deadline.
final class LeaderDutyFailoverTests: DatabaseTestCase {
    var processes: [OrchestratorProcess] = []

    override var databaseMaxConnections: Int { 12 }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(processes, testFailed: testRun?.hasSucceeded == false)
        processes = []
        try await super.tearDown()
    }

    /// How many recorded `rescue` runs each replica made.
    private func runs() async throws -> [String: Int] {
        Dictionary(
            uniqueKeysWithValues: try await database.pool.query(
                "SELECT replica_id, count(*)::int AS n FROM rescue_runs GROUP BY replica_id"
            ).rows.map { (try $0.decode("replica_id", as: String.self), try $0.decode("n", as: Int.self)) })
    }

    private func leader() async throws -> String? {
        try await database.pool.query("SELECT id FROM replicas WHERE leader_since IS NOT NULL AND stopped_at IS NULL")
            .first?.decode("id")
    }

    func testTheReapersRescueRunsOnlyOnTheLeaderAndMovesWhenItIsKilled() async throws {
        // Every recorded run, with the replica that ran it (maintenance_runs keeps only the last).
        try await database.pool.query("CREATE TABLE rescue_runs (replica_id text NOT NULL)")
        try await database.pool.query(
            """
            CREATE FUNCTION note_rescue_run() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.duty = 'rescue' THEN INSERT INTO rescue_runs VALUES (NEW.replica_id); END IF;
                RETURN NEW;
            END $$
            """)
        try await database.pool.query(
            """
            CREATE TRIGGER note_rescue_run AFTER INSERT OR UPDATE ON maintenance_runs
            FOR EACH ROW EXECUTE FUNCTION note_rescue_run()
            """)
        var byID: [String: OrchestratorProcess] = [:]
        for name in ["alpha", "beta"] {
            let process = try OrchestratorProcess(
                name: name, databaseURL: database.url, environment: ["ORCH_DISK_MONITOR_ENABLED": "0"])
            processes.append(process)
            let registered = try await waitUntil(timeout: .seconds(30)) {
                try await self.database.pool.query(
                    "SELECT count(*) AS n FROM replicas WHERE name = $1 AND stopped_at IS NULL", [name]
                ).first!.decode("n", as: Int.self) == 1
            }
            XCTAssertTrue(registered, "\(name) registered")
            let id: String = try await database.pool.query("SELECT id FROM replicas WHERE name = $1", [name]).first!
                .decode("id")
            byID[id] = process
        }
        // The rescue runs every heartbeat interval (1 s): five runs, all by one replica, the leader.
        let ranFive = try await waitUntil(timeout: .seconds(30)) { try await self.runs().values.reduce(0, +) >= 5 }
        XCTAssertTrue(ranFive)
        let before = try await runs()
        let first = try await leader()
        XCTAssertEqual(Array(before.keys), first.map { [$0] }, "only the leader runs it: \(before)")
        let firstLeader = try XCTUnwrap(first)
        let survivor = try XCTUnwrap(byID.keys.first { $0 != firstLeader })

        byID[firstLeader]?.signal(SIGKILL)
        let exited = await byID[firstLeader]!.waitForExit(timeout: .seconds(10))
        XCTAssertTrue(exited)
        // Postgres ends the dead leader's session, which frees the lock; the survivor takes over
        // within an election interval and runs the duty from then on.
        let moved = try await waitUntil(timeout: .seconds(30)) {
            guard try await self.leader() == survivor else { return false }
            return try await self.runs()[survivor] ?? 0 >= 3
        }
        let after = try await runs()
        XCTAssertTrue(moved, "the rescue moved to \(survivor): \(after)")
        XCTAssertEqual(Set(after.keys), [firstLeader, survivor], "never anyone else: \(after)")
    }
}
