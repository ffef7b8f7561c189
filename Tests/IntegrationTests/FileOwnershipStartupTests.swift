import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The startup file-ownership check of a real `orchestrator` replica: one line saying what it
/// found (with the healing command when a file of the work dir is another user's), the scan in
/// `fs_ownership`; with `ORCH_FS_NORMALIZE_CHOWN=1` it gives the file back itself; switched off
/// it says so and scans nothing.
final class FileOwnershipStartupTests: DatabaseTestCase {
    var processes: [OrchestratorProcess] = []
    var workdir: URL!

    override func setUp() async throws {
        try XCTSkipUnless(geteuid() == 0, "handing a file to another user takes root")
        try await super.setUp()
        workdir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-fs-start-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            at: workdir.appendingPathComponent("repos"), withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(processes, testFailed: testRun?.hasSucceeded == false)
        processes = []
        if let workdir { try? FileManager.default.removeItem(at: workdir) }
        try await super.tearDown()
    }

    /// Starts a worker replica on the work dir and waits until its startup said `marker`.
    private func start(
        _ name: String, _ environment: [String: String], saying marker: String
    ) async throws
        -> OrchestratorProcess
    {
        let process = try OrchestratorProcess(
            name: name, databaseURL: database.url,
            environment: ["ORCH_WORKDIR": workdir.path, "ORCH_DISK_MONITOR_ENABLED": "0"].merging(environment) { $1 })
        processes.append(process)
        let said = await waitUntil(timeout: .seconds(60)) { process.output.contains(marker) }
        XCTAssertTrue(said, "\(name) never said '\(marker)': \(process.output.suffix(2000))")
        return process
    }

    private func lines(of process: OrchestratorProcess, containing text: String) -> [Substring] {
        process.output.split(separator: "\n").filter { $0.contains(text) }
    }

    func testTheStartupCheckSaysWhatItFoundOnceAndHealsWhenOptedIn() async throws {
        let stray = workdir.appendingPathComponent("repos/stray.txt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: stray, contents: Data("x".utf8)))
        XCTAssertEqual(chown(stray, 65534, 65534), 0)

        let warned = try await start("fs-warn", [:], saying: "not owned by the service's user")
        let warnings = lines(of: warned, containing: "not owned by the service's user")
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings.first?.contains("chown -R 0:0 \(workdir.path)") == true, "\(warnings)")
        XCTAssertTrue(warnings.first?.contains("stray.txt") == true, "\(warnings)")
        let recorded = try await FileOwnershipStore(pool: database.pool).scans()
        XCTAssertEqual(recorded.first?.scan.mismatched, 1)
        XCTAssertEqual(recorded.first?.replica.hasPrefix("fs-warn"), true, "\(recorded)")
        await warned.stop()

        let healer = try await start(
            "fs-heal", ["ORCH_FS_NORMALIZE_CHOWN": "1"], saying: "file ownership checked")
        let checked = lines(of: healer, containing: "file ownership checked")
        XCTAssertEqual(checked.count, 1, "\(checked)")
        XCTAssertTrue(checked.first?.contains("fs.normalized=1") == true, "\(checked)")
        var info = stat()
        XCTAssertEqual(lstat(stray, &info), 0)
        XCTAssertEqual(info.st_uid, 0, "given back to the service's user")
        let healed = try await FileOwnershipStore(pool: database.pool).scans()
        XCTAssertEqual(healed.first?.scan.mismatched, 0)
        XCTAssertEqual(healed.first?.normalized, 1)
        await healer.stop()

        XCTAssertEqual(chown(stray, 65534, 65534), 0)
        try await database.pool.query("DELETE FROM fs_ownership")
        let off = try await start(
            "fs-off", ["ORCH_FS_NORMALIZE_ENABLED": "0"], saying: "housekeeping.skipped=ORCH_FS_NORMALIZE_ENABLED=0")
        XCTAssertEqual(lines(of: off, containing: "not owned by the service's user"), [])
        let none = try await FileOwnershipStore(pool: database.pool).scans()
        XCTAssertEqual(none.count, 0, "switched off, nothing is scanned")
    }
}
