import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Workers

/// The build-cache pruner runs its command with a timeout and records exit status, reclaimed
/// bytes and error where every replica's `/queue` reads them.
final class BuildCachePrunerTests: DatabaseTestCase {
    private func pruner(_ command: [String], timeout: Duration = .seconds(30)) -> BuildCachePruner {
        BuildCachePruner(
            settings: .init(command: command, interval: .seconds(86400), timeout: timeout),
            directory: FileManager.default.temporaryDirectory.path, replicaID: "replica-a", pool: database.pool,
            logger: Logger(label: "prune-test"))
    }

    func testTheReclaimedBytesAndExitStatusAreRecordedAndAddUp() async throws {
        let reclaimed = try await pruner(["sh", "-c", "echo Total reclaimed space: 1.5GB"]).run()
        XCTAssertEqual(reclaimed, 1_500_000_000)
        try await pruner(["sh", "-c", "echo Total reclaimed space: 500MB"]).run()
        let run = try await BuildCachePruneStore(pool: database.pool).lastRun()
        XCTAssertEqual(run?.exitStatus, 0)
        XCTAssertEqual(run?.reclaimedBytes, 500_000_000)
        XCTAssertEqual(run?.totalReclaimedBytes, 2_000_000_000)
        XCTAssertEqual(run?.runs, 2)
        XCTAssertNil(run?.lastError)
        XCTAssertEqual(run?.replica, "replica-a")
    }

    func testAFailingCommandRecordsItsStatusAndError() async throws {
        try await pruner(["sh", "-c", "echo no daemon >&2; exit 3"]).run()
        var run = try await BuildCachePruneStore(pool: database.pool).lastRun()
        XCTAssertEqual(run?.exitStatus, 3)
        XCTAssertNil(run?.reclaimedBytes)
        XCTAssertTrue(run?.lastError?.contains("exited 3") == true, "\(String(describing: run))")
        XCTAssertTrue(run?.lastError?.contains("no daemon") == true, "\(String(describing: run))")

        try await pruner(["/nonexistent/prune-\(UUID().uuidString)"]).run()
        run = try await BuildCachePruneStore(pool: database.pool).lastRun()
        XCTAssertNotNil(run?.lastError)
        XCTAssertEqual(run?.runs, 2)
    }

    func testACommandPastItsTimeoutIsKilledAndRecorded() async throws {
        let started = ContinuousClock.now
        try await pruner(["sh", "-c", "sleep 30"], timeout: .milliseconds(500)).run()
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(20))
        let run = try await BuildCachePruneStore(pool: database.pool).lastRun()
        XCTAssertNotEqual(run?.exitStatus, 0)
        XCTAssertTrue(run?.lastError?.contains("timed out") == true, "\(String(describing: run))")
    }
}
