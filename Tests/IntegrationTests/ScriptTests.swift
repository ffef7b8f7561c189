import Foundation
import TestSupport
import XCTest

/// The shell helpers behind `scripts/run.sh` and `scripts/test.sh` (scripts/lib/common.sh).
final class ScriptTests: XCTestCase {
    /// Runs `script` with bash in the package root, common.sh sourced; returns status and output.
    private func bash(_ script: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "set -euo pipefail; source scripts/lib/common.sh; " + script]
        process.currentDirectoryURL = packageRoot
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `scripts/run.sh` keeps its database in `.run/pgdata` and the demo's git remote and
    /// workdirs beside it in `.run/demo`. Starting the server must not hand those to the postgres
    /// user: git then refuses the replicas' clones ("dubious ownership") and a second demo run
    /// never gets past its first stage.
    func testStartingPostgresLeavesTheDirectoriesBesideItsDataAlone() throws {
        try XCTSkipUnless(getuid() == 0, "pg_start changes owners only when run as root")
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-pgstart-\(UUID().uuidString.prefix(8))")
        let sibling = parent.appendingPathComponent("demo/work-a")
        try FileManager.default.createDirectory(at: sibling, withIntermediateDirectories: true)
        chmod(parent.path, 0o755)
        let data = parent.appendingPathComponent("pgdata").path
        defer {
            _ = try? bash("pg_stop '\(data)'")
            try? FileManager.default.removeItem(at: parent)
        }
        let (status, output) = try bash("pg_start '\(data)' \(freeTCPPort()) && pg_stop '\(data)'")
        XCTAssertEqual(status, 0, output)
        let owner = try FileManager.default.attributesOfItem(atPath: sibling.path)[.ownerAccountID] as? NSNumber
        XCTAssertEqual(owner?.uint32Value, getuid(), "a directory beside the data directory keeps its owner")
        let demoOwner =
            try FileManager.default.attributesOfItem(atPath: parent.appendingPathComponent("demo").path)[
                .ownerAccountID] as? NSNumber
        XCTAssertEqual(demoOwner?.uint32Value, getuid())
    }

    /// A CI run of `chaos.sh --short` failed because replica 2 could not bind its port: the
    /// fleet's ports came from binding port 0, inside the kernel's ephemeral range, where the
    /// port can meanwhile be the local end of another replica's connection to Postgres.
    /// `free_port COUNT` now gives COUNT neighbouring ports below that range, all free.
    func testFreePortsLieBelowTheEphemeralRangeAndAreFree() throws {
        let range = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let low = try XCTUnwrap(range.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) })
        for _ in 0..<20 {
            let (status, output) = try bash("free_port 9")
            XCTAssertEqual(status, 0, output)
            let base = try XCTUnwrap(Int(output.trimmingCharacters(in: .whitespacesAndNewlines)), output)
            XCTAssertLessThan(base + 8, low, "free_port 9 gave \(base), inside the ephemeral range from \(low)")
            XCTAssertTrue((0..<9).allSatisfy { isTCPPortFree(base + $0) }, "\(base) ..< \(base + 9) are free")
        }
        let port = freeTCPPort()
        XCTAssertLessThan(port, low, "freeTCPPort() stays below the ephemeral range too")
    }
}
