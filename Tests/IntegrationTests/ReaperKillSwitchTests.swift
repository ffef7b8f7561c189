import Foundation
import Store
import TestSupport
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The kill switches of the self-healing duties on a real replica: with `ORCH_REAPER_ENABLED=0`
/// the leader runs none of the reaper's duties and no replica prunes its files (only the startup
/// lease reclaim of its own earlier lives stays), and with `ORCH_DISK_MONITOR_ENABLED=0` no disk
/// is measured; `GET /queue` says so in the `reaper` and `disk_monitor` blocks.
final class ReaperKillSwitchTests: ReplicaProcessTestCase {
    static let token = "kill-switch-token"
    override var workdirPrefix: String { "orch-killswitch" }

    private func queue(_ base: URL) async throws -> [String: Any] {
        var request = URLRequest(url: base.appendingPathComponent("queue"))
        request.setValue("Bearer \(Self.token)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await testURLSession().data(for: request)
        return (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    func testWithTheReaperAndDiskMonitorOffTheirDutiesNeverRun() async throws {
        // An agent log well past the retention: a reaper that ran would delete it.
        let old = workdir.appendingPathComponent("logs/old.log").path
        XCTAssertTrue(FileManager.default.createFile(atPath: old, contents: Data("x".utf8)))
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-60 * 86400)], ofItemAtPath: old)
        let (process, base) = try OrchestratorProcess.serving(
            name: "switched-off", databaseURL: database.url, role: "all",
            environment: [
                "ORCH_REAPER_ENABLED": "0", "ORCH_DISK_MONITOR_ENABLED": "0", "ORCH_ADMIN_TOKEN": Self.token,
                "ORCH_WORKDIR": workdir.path, "ORCH_RECONCILE_INTERVAL": "1s",
            ])
        processes.append(process)
        let answering = await waitUntilAnswering(base)
        XCTAssertTrue(answering)
        // The leader's duties start together and the reaper's rescue would run every second, like
        // the reconciler: three reconcile runs leave no doubt the reaper's would have run too.
        let reconciled = try await waitUntil(timeout: .seconds(30)) {
            try await MaintenanceStore(pool: self.database.pool).runs().first { $0.duty == "reconcile" }?.runs ?? 0
                >= 3
        }
        XCTAssertTrue(reconciled, "the replica leads and reconciles")

        let leaderDuties = try await MaintenanceStore(pool: database.pool).runs().map(\.duty)
        XCTAssertEqual(leaderDuties, ["reconcile"], "no reaper duty ran on the leader")
        let replicaDuties = try await ReplicaMaintenanceStore(pool: database.pool).runs().map(\.duty)
        XCTAssertEqual(replicaDuties, ["lease-reclaim"], "no file was pruned; the startup reclaim stays on")
        XCTAssertTrue(FileManager.default.fileExists(atPath: old), "the old log is still there")
        let measured = try await database.pool.query("SELECT count(*) AS n FROM disk_monitor").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(measured, 0, "no disk measured")

        let body = try await queue(base)
        let reaper = body["reaper"] as? [String: Any]
        XCTAssertEqual(reaper?["enabled"] as? Bool, false)
        XCTAssertEqual((reaper?["duties"] as? [String: Any])?.count, 0)
        XCTAssertEqual((body["disk_monitor"] as? [String: Any])?["enabled"] as? Bool, false)
        let output = process.output
        XCTAssertTrue(
            output.contains("housekeeping.skipped=ORCH_REAPER_ENABLED=0"), "the startup log says why it skipped")
    }
}
