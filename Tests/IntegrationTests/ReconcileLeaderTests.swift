import Foundation
import Store
import TestSupport
import XCTest

/// The reconciler is a leader duty: with two real replicas, only the leader runs it.
final class ReconcileLeaderTests: DatabaseTestCase {
    var processes: [OrchestratorProcess] = []

    override var databaseMaxConnections: Int { 12 }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(processes, testFailed: testRun?.hasSucceeded == false)
        processes = []
        try await super.tearDown()
    }

    func testOnlyTheLeaderReconciles() async throws {
        // Every recorded run, with the replica that ran it (maintenance_runs keeps only the last).
        try await database.pool.query("CREATE TABLE reconcile_runs (replica_id text NOT NULL)")
        try await database.pool.query(
            """
            CREATE FUNCTION note_reconcile_run() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.duty = 'reconcile' THEN INSERT INTO reconcile_runs VALUES (NEW.replica_id); END IF;
                RETURN NEW;
            END $$
            """)
        try await database.pool.query(
            """
            CREATE TRIGGER note_reconcile_run AFTER INSERT OR UPDATE ON maintenance_runs
            FOR EACH ROW EXECUTE FUNCTION note_reconcile_run()
            """)
        for name in ["alpha", "beta"] {
            processes.append(
                try OrchestratorProcess(
                    name: name, databaseURL: database.url,
                    environment: ["ORCH_RECONCILE_INTERVAL": "1s", "ORCH_DISK_MONITOR_ENABLED": "0"]))
        }
        let bothUp = try await waitUntil(timeout: .seconds(30)) {
            try await self.database.pool.query(
                "SELECT count(*) AS n FROM replicas WHERE stopped_at IS NULL"
            ).first!.decode("n", as: Int.self) == 2
        }
        XCTAssertTrue(bothUp)
        let ranThrice = try await waitUntil(timeout: .seconds(30)) {
            try await self.database.pool.query("SELECT count(*) AS n FROM reconcile_runs").first!.decode(
                "n", as: Int.self) >= 3
        }
        XCTAssertTrue(ranThrice)
        let runners: [String] = try await database.pool.query(
            "SELECT DISTINCT replica_id FROM reconcile_runs"
        ).rows.map { try $0.decode("replica_id") }
        let leader: String? = try await database.pool.query(
            "SELECT id FROM replicas WHERE leader_since IS NOT NULL AND stopped_at IS NULL"
        ).first?.decode("id")
        XCTAssertEqual(runners.count, 1, "\(runners)")
        XCTAssertEqual(runners.first, leader)
    }
}
