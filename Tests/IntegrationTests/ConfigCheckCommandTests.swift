import Foundation
import TestSupport
import XCTest

/// `orchestrator config check [FILE]` (issue #15 item 9), run as a user would: the real binary.
final class ConfigCheckCommandTests: XCTestCase {
    /// Runs the binary with `arguments` and `environment` only; returns status, stdout, stderr.
    private func run(_ arguments: [String], environment: [String: String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = OrchestratorProcess.binary
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { $1 }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString).out")
        let err = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        process.waitUntilExit()
        return (
            process.terminationStatus, try String(contentsOf: out, encoding: .utf8),
            try String(contentsOf: err, encoding: .utf8)
        )
    }

    private func write(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testAGoodFileIsPrintedWithItsSecretsMasked() throws {
        let path = try write(
            """
            repos:
              - project: ORCH
                repo: acme/orch
                clone_url: /srv/git/orch.git
                test_command: ["swift", "test"]
                max_active_tasks: 2
            agents:
              default: { command: ["claude", "-p"], timeout: 45m }
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, out, err) = try run(
            ["config", "check", path],
            environment: [
                "ORCH_ADMIN_TOKEN": "admin-token-do-not-print",
                "ORCH_DATABASE_URL": "postgresql://orch:db-password-do-not-print@db/orch",
            ])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(out.contains("adminToken: ****"), out)
        XCTAssertTrue(out.contains("databaseURL: postgresql://orch:****@db/orch"), out)
        XCTAssertFalse(out.contains("do-not-print"), out)
        XCTAssertTrue(out.contains("file.repos[0].repo: acme/orch"), out)
        XCTAssertTrue(out.contains("file.repos[0].gates.maxActiveTasks: 2"), out)
        XCTAssertTrue(out.contains("file.agents.default.runners[0].command: [claude, -p]"), out)
    }

    /// The README's `ORCH_CONFIG` example is a file a user copies: it must pass the check as written.
    func testTheReadmesExampleFilePasses() throws {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let intro = try XCTUnwrap(readme.range(of: "`ORCH_CONFIG` names an optional YAML file"))
        let open = try XCTUnwrap(readme.range(of: "```yaml\n", range: intro.upperBound..<readme.endIndex))
        let close = try XCTUnwrap(readme.range(of: "```", range: open.upperBound..<readme.endIndex))
        let path = try write(String(readme[open.upperBound..<close.lowerBound]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, out, err) = try run(["config", "check", path], environment: [:])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(out.contains("file.repos[0].allowedActors: [ana@example.com, "), out)
        XCTAssertTrue(out.contains("file.agents.reviewer.runners[0].command: [claude, -p, "), out)
    }

    func testEveryProblemIsListedAndTheExitIsNonZero() throws {
        let path = try write(
            """
            repos:
              - project: ORCH
                repo: acme/orch
                clone_url: /x
                tset_command: ["true"]
            budgts: {}
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, out, err) = try run(["config", "check", path], environment: [:])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(out.isEmpty, out)
        XCTAssertTrue(err.contains("repos[0].tset_command: unknown key; did you mean 'test_command'?"), err)
        XCTAssertTrue(err.contains("budgts: unknown key; did you mean 'budgets'?"), err)

        // A bad environment variable is an error too, and the file comes from ORCH_CONFIG by default.
        let good = try write("repos: []\n")
        defer { try? FileManager.default.removeItem(atPath: good) }
        let (badStatus, _, badErr) = try run(
            ["config", "check"], environment: ["ORCH_CONFIG": good, "ORCH_MAX_CONCURRENCY": "many"])
        XCTAssertEqual(badStatus, 1)
        XCTAssertTrue(badErr.contains("ORCH_MAX_CONCURRENCY"), badErr)
    }
}
