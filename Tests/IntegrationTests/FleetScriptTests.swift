import Foundation
import TestSupport
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `scripts/fleet.sh`: a local fleet of real `orchestrator` replicas behind HAProxy, on this
/// suite's database. It starts, answers through the one URL (requests spread over the replicas),
/// reports each replica's pid, port and health, and stops everything it started.
final class FleetScriptTests: DatabaseTestCase {
    private var directory: URL!

    override func setUp() async throws {
        try await super.setUp()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-fleet-\(UUID().uuidString.prefix(8))")
    }

    override func tearDown() async throws {
        _ = try? await fleet(["stop"])
        try? FileManager.default.removeItem(at: directory)
        try await super.tearDown()
    }

    /// Runs `scripts/fleet.sh arguments` and waits (up to 5 minutes) for its exit status.
    private func fleet(_ arguments: [String], port: Int = 0) async throws -> (status: Int32, output: String) {
        let stamp = UUID().uuidString.prefix(8)
        let output = directory.appendingPathExtension("\(stamp).out")
        let exit = directory.appendingPathExtension("\(stamp).rc")
        defer { for file in [output, exit] { try? FileManager.default.removeItem(at: file) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        // The status is written to a file and waited for, and the output goes to a file: the
        // replicas the script leaves running inherit whatever it was given, so neither a pipe's
        // end nor the script's own reaping (which Foundation does not always report here) can be
        // relied on to say it finished.
        process.arguments =
            [
                "-c",
                #"bash scripts/fleet.sh "$@" >"$FLEET_OUT" 2>&1; echo $? >"$FLEET_RC.tmp"; mv "$FLEET_RC.tmp" "$FLEET_RC""#,
                "fleet",
            ]
            + arguments
        process.currentDirectoryURL = packageRoot
        var environment = ProcessInfo.processInfo.environment
        environment["FLEET_OUT"] = output.path
        environment["FLEET_RC"] = exit.path
        environment["ORCH_FLEET_DIR"] = directory.path
        environment["ORCH_DATABASE_URL"] = database.url
        environment["ORCH_BINARY"] = OrchestratorProcess.binary.path
        environment["ORCH_ADMIN_TOKEN"] = "fleet-token"
        environment["PATH"] = (environment["PATH"] ?? "") + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        if port != 0 { environment["ORCH_LB_PORT"] = "\(port)" }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let finished = await waitUntil(timeout: .seconds(300)) {
            FileManager.default.fileExists(atPath: exit.path)
        }
        guard finished, let status = Int32(try String(contentsOf: exit, encoding: .utf8).trimmed) else {
            throw TestSetupError("scripts/fleet.sh \(arguments) did not finish in 5 minutes")
        }
        return (status, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    private func pids(in status: String) -> [Int32] {
        status.matches(of: #/^replica\d pid=(\d+) /#.anchorsMatchLineEndings()).compactMap { Int32($0.output.1) }
    }

    func testAFleetStartsAnswersThroughTheBalancerReportsAndStops() async throws {
        // Ports: the balancer's and the two after it for the replicas.
        let port = freeTCPPorts(count: 3)
        let started = try await fleet(["start", "2"], port: port)
        XCTAssertEqual(started.status, 0, started.output)
        XCTAssertTrue(started.output.contains("fleet: 2 replicas behind http://127.0.0.1:\(port)"), started.output)

        let status = try await fleet(["status"])
        XCTAssertEqual(status.status, 0, status.output)
        let lines = status.output.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("replica1 pid=") && $0.hasSuffix("port=\(port + 1) health=ready") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("replica2 pid=") && $0.hasSuffix("port=\(port + 2) health=ready") })
        let replicaPIDs = pids(in: status.output)
        XCTAssertEqual(replicaPIDs.count, 2)

        // Through the balancer, an admin call reaches a replica that sees both.
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/queue")!)
        request.setValue("Bearer fleet-token", forHTTPHeaderField: "Authorization")
        let (data, response) = try await testURLSession().data(for: request)
        XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200)
        let replicas = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["replicas"] as? [Any]
        XCTAssertEqual(replicas?.count, 2)

        // One replica gone: status says so and fails.
        kill(replicaPIDs[0], SIGKILL)
        let down = await waitUntil(timeout: .seconds(10)) { (try? await self.fleet(["status"]).status) == 1 }
        XCTAssertTrue(down)
        let afterKill = try await fleet(["status"]).output
        XCTAssertTrue(afterKill.contains("replica1 pid=- port=\(port + 1) health=down"), afterKill)

        let balancer = try XCTUnwrap(
            Int32(try String(contentsOf: directory.appendingPathComponent("haproxy.pid"), encoding: .utf8).trimmed))
        let stopped = try await fleet(["stop"])
        XCTAssertEqual(stopped.status, 0, stopped.output)
        // Each was started in a session of its own (setsid): its group is its pid.
        XCTAssertEqual(livingProcesses(inGroup: Int(replicaPIDs[1])), [], "the live replica stopped")
        XCTAssertEqual(livingProcesses(inGroup: Int(balancer)), [], "the balancer stopped")
        let afterStop = try await fleet(["status"]).status
        XCTAssertNotEqual(afterStop, 0)
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
