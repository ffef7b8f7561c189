import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `orchestrator` process started by a test, with its output in a log file.
public final class OrchestratorProcess: @unchecked Sendable {
    // @unchecked: test-only wrapper around Foundation.Process, used from one test at a time.
    public let process: Process
    public let logURL: URL
    public let name: String

    /// The built binary: `ORCH_TEST_BINARY`, else `.build/debug/orchestrator` under the package root.
    public static var binary: URL {
        if let explicit = ProcessInfo.processInfo.environment["ORCH_TEST_BINARY"] {
            return URL(fileURLWithPath: explicit)
        }
        return packageRoot.appendingPathComponent(".build/debug/orchestrator")
    }

    /// Starts `orchestrator <arguments>` with `ORCH_DATABASE_URL` set and fast liveness settings.
    public init(
        name: String, databaseURL: String, arguments: [String] = ["serve", "--role", "worker"],
        environment extra: [String: String] = [:]
    ) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw TestSetupError(
                "orchestrator binary not found at \(Self.binary.path); build it first (scripts/test.sh does)")
        }
        self.name = name
        process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.currentDirectoryURL = packageRoot
        var environment = ProcessInfo.processInfo.environment
        environment["ORCH_DATABASE_URL"] = databaseURL
        environment["ORCH_REPLICA_NAME"] = name
        environment["ORCH_DIAGNOSTIC_JOBS"] = "1"
        environment["ORCH_HEARTBEAT_INTERVAL"] = "1s"
        environment["ORCH_HEARTBEAT_TTL"] = "3s"
        environment["ORCH_ELECTION_INTERVAL"] = "1s"
        environment["ORCH_POLL_INTERVAL"] = "5s"
        environment["ORCH_LOG_LEVEL"] = "info"
        environment["ORCH_MIGRATIONS_DIR"] = migrationsDirectory.path
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-\(name)-\(UUID().uuidString.prefix(6)).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Sends a signal.
    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for exit up to `timeout`; returns whether it exited.
    public func waitForExit(timeout: Duration) async -> Bool {
        await waitUntil(timeout: timeout) { !process.isRunning }
    }

    /// Kills (SIGKILL) if still running and waits.
    public func stop() async {
        if process.isRunning {
            signal(SIGKILL)
            _ = await waitForExit(timeout: .seconds(10))
        }
    }

    /// What the process printed so far.
    public var output: String {
        (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
    }

    /// Starts `orchestrator serve --role <role>` on 127.0.0.1 and a port the kernel picked;
    /// returns the process and its base URL (wait for it with `waitUntilAnswering`).
    public static func serving(
        name: String, databaseURL: String, role: String, environment: [String: String] = [:]
    ) throws -> (process: OrchestratorProcess, base: URL) {
        let port = freeTCPPort()
        let process = try OrchestratorProcess(
            name: name, databaseURL: databaseURL,
            arguments: ["serve", "--role", role, "--host", "127.0.0.1", "--port", String(port)],
            environment: environment)
        return (process, URL(string: "http://127.0.0.1:\(port)")!)
    }

    /// Stops every process; when the test failed, prints the tail of each one's output.
    public static func stopAll(_ processes: [OrchestratorProcess], testFailed: Bool, tail: Int = 4000) async {
        for process in processes { await process.stop() }
        guard testFailed else { return }
        for process in processes { print("---- \(process.name) output ----\n\(process.output.suffix(tail))") }
    }
}

/// Waits until `url` answers with any HTTP status (the server is up), at most `timeout`.
public func waitUntilAnswering(_ url: URL, timeout: Duration = .seconds(60)) async -> Bool {
    let session = testURLSession()
    return await waitUntil(timeout: timeout) { (try? await session.data(from: url))?.1 is HTTPURLResponse }
}
