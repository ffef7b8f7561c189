import Foundation
import Store
import TestSupport
import XCTest

/// The reaper's `merge-lease-sweep`: a `merge_leases` row whose holder no longer holds the
/// repository's advisory lock is deleted; the row of a live holder stays.
final class MergeLeaseSweepTests: DatabaseTestCase {
    private func repos() async throws -> [String] {
        try await database.pool.query("SELECT repo FROM merge_leases ORDER BY repo").rows.map { try $0.decode("repo") }
    }

    func testRowsOfHoldersThatAreGoneAreDeletedAndLiveOnesKept() async throws {
        let leases = MergeLeaseStore(pool: database.pool)
        let key = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.merge, text: "acme/live")
        try await database.pool.withAdvisoryLock(key) { handle in
            try await database.pool.query(
                "INSERT INTO merge_leases (repo, work_item, replica_id, backend_pid) VALUES ($1, $2, $3, $4)",
                ["acme/live", "ORCH-1", "replica-a", handle.backendPID])
            // A holder that died: its session, and so its lock, are gone.
            try await database.pool.query(
                "INSERT INTO merge_leases (repo, work_item, replica_id, backend_pid) VALUES ($1, $2, $3, $4)",
                ["acme/dead", "ORCH-2", "replica-b", Int32(999_999)])
            let swept = try await leases.pruneStale()
            XCTAssertEqual(swept, 1)
            let left = try await repos()
            XCTAssertEqual(left, ["acme/live"])
        }
        // Released without clearing its row (as a cancelled release may): stale now.
        let swept = try await leases.pruneStale()
        XCTAssertEqual(swept, 1)
        let left = try await repos()
        XCTAssertEqual(left, [])
    }
}
