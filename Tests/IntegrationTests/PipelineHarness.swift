import Foundation
import Store
import TestSupport
import Workers
import XCTest

@testable import App

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Real `orchestrator serve` processes over a test database, a local bare git remote and the
/// example agent, driven by signed Plane webhooks: the setting of the end-to-end pipeline tests.
final class PipelineHarness: @unchecked Sendable {
    // @unchecked: used from one test method at a time (XCTest runs a class's tests serially).
    let database: TestDatabase
    let root: URL
    let secret = "pipeline-secret"
    let token = "pipeline-admin"
    let session = testURLSession()
    private(set) var servers: [OrchestratorProcess] = []

    /// The repository entry of the configuration (`repos[0]`).
    struct Repository: Sendable {
        var cloneURL: String
        var testCommand: [String]? = ["ls", "tests"]
        var deployCommand: [String]?
        /// Further `key: value` lines of the entry.
        var extra: [String] = []
    }

    init(suite: String) async throws {
        database = try await TestDatabase.create(suite: suite)
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-\(suite)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// Stops the processes (printing their output when the test failed), ends agents they left,
    /// drops the database and removes the files.
    func shutdown(testFailed: Bool) async {
        await stopServers(testFailed: testFailed)
        await Self.killAgentsLeftRunning(in: database)
        await database.drop()
        try? FileManager.default.removeItem(at: root)
    }

    /// Agents of replicas killed with SIGKILL outlive them (their own process group): ends every
    /// recorded agent still running (matched by pid and process start time).
    static func killAgentsLeftRunning(in database: TestDatabase) async {
        guard
            let rows = try? await database.pool.query("SELECT pid, process_start FROM agent_runs WHERE pid IS NOT NULL")
                .rows
        else { return }
        for row in rows {
            guard let pid = try? row.decode("pid", as: Int.self),
                let start = try? row.decode("process_start", as: Int64?.self),
                ProcStat.startTime(pid: pid) == start
            else { continue }
            kill(-pid_t(pid), SIGKILL)
        }
    }

    /// Stops the processes started so far.
    func stopServers(testFailed: Bool) async {
        await OrchestratorProcess.stopAll(servers, testFailed: testFailed, tail: 6000)
        servers = []
    }

    /// A fresh bare remote (`<root>/<name>/remote.git`) with one commit on main.
    func makeRemote(_ name: String = "repo") throws -> URL {
        let directory = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try makeBareRemote(in: directory)
    }

    /// Writes an `ORCH_CONFIG` file for one repository and the example agent with these options.
    func writeConfig(
        _ repository: Repository, agent options: [String] = [], reviewer reviewerOptions: [String] = [],
        agentTimeout: String = "60s",
        name: String = "orchestrator.yaml"
    ) throws -> URL {
        let agent = packageRoot.appendingPathComponent("examples/agent/agent.py").path
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        func list(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        var entry = [
            "project: ORCH", "plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544", "repo: acme/orch",
            "clone_url: \(repository.cloneURL)", "default_branch: main",
        ]
        if let test = repository.testCommand { entry.append("test_command: \(list(test))") }
        if let deploy = repository.deployCommand { entry.append("deploy_command: \(list(deploy))") }
        entry += repository.extra
        let config = root.appendingPathComponent(name)
        try """
        repos:
          - \(entry.joined(separator: "\n    "))
        agents:
          default: { command: \(list([python, agent] + options)), timeout: \(agentTimeout) }
          reviewer: { command: \(list([python, agent] + reviewerOptions)), timeout: \(agentTimeout) }
        """.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    /// Starts replica `index` with `config`, fast retries and polling; waits until it is ready.
    @discardableResult
    func launch(_ index: Int, config: URL, environment extra: [String: String] = [:]) async throws -> URL {
        let (server, base) = try OrchestratorProcess.serving(
            name: "pipeline-\(index)", databaseURL: database.url, role: "all",
            environment: [
                "ORCH_PLANE_WEBHOOK_SECRET": secret, "ORCH_ADMIN_TOKEN": token, "ORCH_CONFIG": config.path,
                "ORCH_WORKDIR": root.appendingPathComponent("work-\(index)").path, "ORCH_POLL_INTERVAL": "1s",
                "ORCH_JOB_RETRY_INITIAL": "100ms", "ORCH_JOB_RETRY_MAX": "200ms", "ORCH_HEARTBEAT_INTERVAL": "1s",
            ].merging(extra) { $1 })
        servers.append(server)
        let up = await waitUntilAnswering(base.appendingPathComponent("health/ready"))
        XCTAssertTrue(up, "replica \(base) ready")
        return base
    }

    /// Sends a signed Plane `issue` webhook for work item `ORCH-<sequence>`.
    func sendIssue(to base: URL, sequence: Int = 98, labels: [String] = ["auto"]) async throws {
        let status = try await sendPlaneIssue(to: base, secret: secret, labels: labels, sequence: sequence)
        XCTAssertEqual(status, 202)
    }

    /// Calls an admin endpoint; returns the status and the JSON object answered.
    @discardableResult
    func admin(_ method: String, _ base: URL, _ path: String) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: path, relativeTo: base)!)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await session.data(for: request)
        return (
            (response as? HTTPURLResponse)?.statusCode ?? 0,
            (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        )
    }

    func task(_ workItem: String) async throws -> TaskRecord? {
        try await TaskStore(pool: database.pool).task(workItem: workItem)
    }

    /// Active tasks without a queued or running stage job (or, after a watched deploy, its
    /// post-deploy watch job), in one snapshot (a transition commits a task's next job with it,
    /// so this is empty at every instant unless a task is stranded).
    func strandedTasks() async throws -> [String] {
        try await database.pool.query(
            """
            SELECT work_item FROM tasks t WHERE status = 'active' AND NOT EXISTS (
                SELECT 1 FROM jobs j WHERE j.kind IN ('run_stage', 'post_deploy_watch') AND j.payload->>'work_item' = t.work_item
                AND j.status IN ('queued', 'running'))
            """
        ).rows.map { try $0.decode("work_item") }
    }

    /// Waits until the task rests (`done`, `held`, `failed`, `cancelled` or `awaiting_approval`),
    /// checking at every look that it is never active without a live stage job. Returns it. A task
    /// `waiting` for the serial gate is not at rest: it starts when the task ahead frees the slot.
    func waitUntilAtRest(_ workItem: String, timeout: Duration = .seconds(90)) async throws -> TaskRecord? {
        var stranded: [String] = []
        _ = try await waitUntil(timeout: timeout) {
            stranded += try await self.strandedTasks().filter { $0 == workItem }
            return try await self.task(workItem).map { ![.active, .waiting].contains($0.state.status) } ?? false
        }
        XCTAssertEqual(stranded, [], "\(workItem) was active without a live stage job")
        return try await task(workItem)
    }

    /// The reason of the task's last event.
    func lastReason(_ workItem: String) async throws -> String {
        try await TaskStore(pool: database.pool).history(workItem: workItem).last?.reason ?? ""
    }
}
