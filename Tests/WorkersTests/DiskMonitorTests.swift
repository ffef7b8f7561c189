import Foundation
import Logging
import Store
import Synchronization
import TestSupport
import XCTest

@testable import Workers

/// The disk watchdog against the real database with an injected `statvfs`: exactly one alert up
/// and one all-clear down, none in between, none again after a restart, and the last measurement
/// per host and path for `/queue`.
final class DiskMonitorTests: DatabaseTestCase {
    /// The fill level the injected measurement reports.
    final class Level: Sendable {
        let percent = Mutex(50.0)
        func measure(_ path: String) throws -> DiskUsage {
            let used = percent.withLock { $0 }
            return DiskUsage(
                totalBytes: 1000 << 20, freeBytes: Int64(Double(1000 << 20) * (100 - used) / 100), usedPercent: used)
        }
    }

    private func monitor(_ level: Level, host: String = "host-a") -> DiskMonitor {
        DiskMonitor(
            settings: .init(paths: ["/srv/orch"], threshold: 90, hysteresis: 5, interval: .seconds(60)), host: host,
            replicaID: "replica-\(host)", pool: database.pool, alerts: Alerts(jobs: JobStore(pool: database.pool)),
            measure: { try level.measure($0) }, logger: Logger(label: "disk-test"))
    }

    private func alerts() async throws -> [String] {
        try await database.pool.query(
            "SELECT payload->>'text' AS text FROM jobs WHERE kind = $1 ORDER BY id", [AlertJob.kind]
        ).rows.map { try $0.decode("text") }
    }

    func testOneAlertAcrossTheThresholdAndOneBackBelowAcrossARestart() async throws {
        let level = Level()
        var watchdog = monitor(level)
        for percent in [50.0, 89.9, 91, 97] {
            level.percent.withLock { $0 = percent }
            await watchdog.check()
        }
        var raised = try await alerts()
        XCTAssertEqual(raised.count, 1, "\(raised)")
        XCTAssertTrue(raised.first?.contains("/srv/orch on host-a is 91.0% full") == true, "\(raised)")

        // A restarted replica finds the disk still full: no second alert.
        watchdog = monitor(level)
        for percent in [95.0, 88, 86] {
            level.percent.withLock { $0 = percent }
            await watchdog.check()
        }
        raised = try await alerts()
        XCTAssertEqual(raised.count, 1, "between the threshold and its hysteresis nothing is said")

        for percent in [84.0, 80, 70] {
            level.percent.withLock { $0 = percent }
            await watchdog.check()
        }
        raised = try await alerts()
        XCTAssertEqual(raised.count, 2, "\(raised)")
        XCTAssertTrue(raised.last?.contains("back to 84.0%") == true, "\(raised)")

        let measured = try await DiskMonitorStore(pool: database.pool).measurements()
        XCTAssertEqual(measured.map(\.path), ["/srv/orch"])
        XCTAssertEqual(measured.first?.usedPercent, 70)
        XCTAssertEqual(measured.first?.above, false)
        XCTAssertEqual(measured.first?.host, "host-a")
    }

    func testEachHostHasItsOwnStateAndAnUnmeasurablePathIsRecorded() async throws {
        let level = Level()
        level.percent.withLock { $0 = 95 }
        await monitor(level, host: "host-a").check()
        await monitor(level, host: "host-b").check()
        let raised = try await alerts()
        XCTAssertEqual(raised.count, 2, "one per host: each has its own disk")

        let broken = DiskMonitor(
            settings: .init(paths: ["/nonexistent/orch-\(UUID().uuidString)"], threshold: 90, interval: .seconds(60)),
            host: "host-c", replicaID: "replica-c", pool: database.pool, alerts: .off,
            logger: Logger(label: "disk-test"))
        let changes = await broken.check()
        XCTAssertTrue(changes.isEmpty)
        let measured = try await DiskMonitorStore(pool: database.pool).measurements()
        let error = measured.first { $0.host == "host-c" }?.lastError
        XCTAssertTrue(error?.contains("statvfs") == true, "\(measured)")
    }
}
