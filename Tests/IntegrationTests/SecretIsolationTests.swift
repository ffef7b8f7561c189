import Foundation
import Hummingbird
import NIOCore
import Store
import TestSupport
import Workers
import XCTest

@testable import App

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Secrets stay away from agents and out of what the orchestrator writes (issue #9, item 7),
/// end to end with real `orchestrator serve` processes.
final class SecretIsolationTests: DatabaseTestCase {
    var servers: [OrchestratorProcess] = []
    var root: URL!
    let webhookSecret = "isolation-webhook-secret"
    let adminToken = "isolation-admin-token-7d1c"
    let giteaToken = "isolation-gitea-token-4b2a"
    let botToken = "isolation-bot-token-9e8f"

    override func setUp() async throws {
        try await super.setUp()
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("orch-secrets-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(servers, testFailed: testRun?.hasSucceeded == false, tail: 6000)
        try await super.tearDown()
        try? FileManager.default.removeItem(at: root)
    }

    private func makeRemote() throws -> URL {
        try makeBareRemote(in: root, readme: "# Demo\n")
    }

    private func sendIssue(to base: URL) async throws {
        let answered = try await sendPlaneIssue(to: base, secret: webhookSecret)
        XCTAssertEqual(answered, 202)
    }

    /// A failing `test_command` prints the admin and Gitea tokens (as a test the agent wrote
    /// could); an agent configured with `user: nobody` tries to read the orchestrator's
    /// environment through `/proc/$PPID/environ`. Neither token reaches task events, lessons,
    /// Telegram or Plane, and the agent reads nothing.
    func testSecretsReachNeitherTheAgentNorEventsLessonsTelegramOrPlane() async throws {
        guard geteuid() == 0 else { throw XCTSkip("running the agent as nobody needs a root orchestrator") }
        let telegram = CallLog()
        let comments = CallLog()
        let router = Router()
        router.post("/bot\(botToken)/sendMessage") { request, _ -> Response in
            telegram.append(String(buffer: try await request.body.collect(upTo: 1 << 20)))
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        router.post("/api/v1/workspaces/acme/projects/:project/issues/:issue/comments/") { request, _ -> Response in
            comments.append(String(buffer: try await request.body.collect(upTo: 1 << 20)))
            return Response(status: .created)
        }
        let remote = try makeRemote()
        let agent = packageRoot.appendingPathComponent("examples/agent/agent.py").path
        // The agent: record who it is, its parent, and what it can read of the parent's
        // environment (into its own home), then behave like the example agent.
        let script = root.appendingPathComponent("agent.sh")
        try """
        #!/bin/sh
        id -u > "$HOME/uid"
        echo "$PPID" > "$HOME/ppid"
        cat "/proc/$PPID/environ" > "$HOME/environ" 2> "$HOME/environ.err"
        exec /usr/bin/python3 \(agent) "$@"
        """.write(to: script, atomically: true, encoding: .utf8)
        let config = root.appendingPathComponent("orchestrator.yaml")
        try """
        repos:
          - project: ORCH
            plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544
            repo: acme/orch
            clone_url: \(remote.path)
            default_branch: main
            test_command: ["sh", "-c", "echo leaked admin=\(adminToken) gitea=\(giteaToken); exit 1"]
        agents:
          default: { command: ["/bin/sh", "\(script.path)"], timeout: 60s, user: nobody }
        """.write(to: config, atomically: true, encoding: .utf8)
        let workdir = root.appendingPathComponent("work")
        try await StandInServer.with(router) { api in
            let (server, base) = try OrchestratorProcess.serving(
                name: "isolation", databaseURL: database.url, role: "all",
                environment: [
                    "ORCH_PLANE_WEBHOOK_SECRET": webhookSecret, "ORCH_ADMIN_TOKEN": adminToken,
                    "ORCH_CONFIG": config.path, "ORCH_WORKDIR": workdir.path, "ORCH_POLL_INTERVAL": "1s",
                    "ORCH_GITEA_API_URL": api.absoluteString, "ORCH_GITEA_TOKEN": giteaToken,
                    "ORCH_TELEGRAM_API_URL": api.absoluteString, "ORCH_TELEGRAM_BOT_TOKEN": botToken,
                    "ORCH_TELEGRAM_CHAT_ID": "42", "ORCH_PLANE_API_URL": api.absoluteString,
                    "ORCH_PLANE_API_KEY": "isolation-plane-key", "ORCH_PLANE_WORKSPACE": "acme",
                ])
            servers.append(server)
            let up = await waitUntilAnswering(base.appendingPathComponent("health/ready"))
            XCTAssertTrue(up)
            try await sendIssue(to: base)
            let tasks = TaskStore(pool: database.pool)
            let failed = try await waitUntil(timeout: .seconds(120)) {
                try await tasks.task(workItem: "ORCH-98")?.state.status == .failed
            }
            XCTAssertTrue(failed, "the failing test_command fails the task")
            let events = try await tasks.history(workItem: "ORCH-98").count
            let delivered = await waitUntil(timeout: .seconds(30)) {
                telegram.all.count >= events && comments.all.count >= events
            }
            XCTAssertTrue(delivered, "\(telegram.all.count) messages, \(comments.all.count) comments, \(events) events")

            // The agent ran as nobody, as the orchestrator's child, and read nothing of its
            // environment.
            let home = workdir.appendingPathComponent("homes/ORCH-98")
            func file(_ name: String) -> String {
                ((try? String(contentsOf: home.appendingPathComponent(name), encoding: .utf8)) ?? "")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            XCTAssertEqual(file("uid"), "65534")
            XCTAssertEqual(file("ppid"), String(server.pid), "the agent's parent is the orchestrator")
            XCTAssertTrue(file("environ.err").contains("Permission denied"), file("environ.err"))
            for secret in [adminToken, giteaToken, webhookSecret, botToken, "ORCH_DATABASE_URL"] {
                XCTAssertFalse(file("environ").contains(secret), "the agent read \(secret)")
            }
        }

        let reasons = try await database.pool.query("SELECT coalesce(reason, '') AS reason FROM task_events").rows
            .map { try $0.decode("reason", as: String.self) }
        let lessons = try await database.pool.query(
            "SELECT root_cause || coalesce(suggestion, '') || detail::text AS text FROM lessons"
        ).rows
            .map { try $0.decode("text", as: String.self) }
        XCTAssertFalse(lessons.isEmpty, "the final gate failure recorded a lesson")
        // The command's output (not only its argv) reached the event, redacted.
        let redacted = "exit 1:\nleaked admin=[REDACTED] gitea=[REDACTED]"
        XCTAssertTrue(reasons.contains { $0.contains(redacted) }, "\(reasons)")
        XCTAssertTrue(telegram.all.contains { $0.contains("leaked admin=[REDACTED]") }, "\(telegram.all)")
        XCTAssertTrue(comments.all.contains { $0.contains("leaked admin=[REDACTED]") }, "\(comments.all)")
        let places = [
            ("task_events", reasons), ("lessons", lessons), ("telegram", telegram.all), ("plane", comments.all),
        ]
        for (place, texts) in places {
            for secret in [adminToken, giteaToken] {
                XCTAssertFalse(texts.contains { $0.contains(secret) }, "\(secret) reached \(place)")
            }
        }
    }

    /// An orchestrator that is not root is non-dumpable: a process of its own uid cannot read
    /// its `/proc/<pid>/environ` (it could before: same uid, dumpable). The control — a plain
    /// process of that uid with the same variable — shows the read would otherwise succeed.
    func testAProcessOfTheOrchestratorsOwnUidCannotReadItsEnvironment() async throws {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to start processes as nobody")
        }
        let secret = "nondumpable-admin-secret"
        let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        func start(_ arguments: [String]) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: arguments[0])
            process.arguments = Array(arguments.dropFirst())
            process.currentDirectoryURL = URL(fileURLWithPath: "/")
            // The database is unreachable: serve keeps waiting for it (up to a minute).
            process.environment = [
                "PATH": "/usr/bin:/bin", "ORCH_ADMIN_TOKEN": secret,
                "ORCH_DATABASE_URL": "postgresql://orch@127.0.0.1:1/orch",
                "ORCH_WORKDIR": root.appendingPathComponent("nobody").path,
                "ORCH_MIGRATIONS_DIR": migrationsDirectory.path,
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        func readAsNobody(_ pid: Int32) throws -> String {
            let reader = Process()
            reader.executableURL = URL(fileURLWithPath: asNobody[0])
            reader.arguments = Array(asNobody.dropFirst()) + ["cat", "/proc/\(pid)/environ"]
            let pipe = Pipe()
            reader.standardOutput = pipe
            reader.standardError = pipe
            try reader.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            reader.waitUntilExit()
            return output
        }
        func owner(_ pid: Int32) -> UInt? {
            (try? FileManager.default.attributesOfItem(atPath: "/proc/\(pid)/environ"))?[.ownerAccountID] as? UInt
        }

        let control = try start(asNobody + ["/bin/sleep", "30"])
        defer { control.terminate() }
        let controlRunning = await waitUntil(timeout: .seconds(10)) { owner(control.processIdentifier) == 65534 }
        XCTAssertTrue(controlRunning)
        let controlRead = try readAsNobody(control.processIdentifier)
        XCTAssertTrue(controlRead.contains(secret), "control: same uid, dumpable, readable")

        let serve = [OrchestratorProcess.binary.path, "serve", "--role", "api", "--port", "0"]
        let orchestrator = try start(asNobody + serve)
        defer { orchestrator.terminate() }
        // Non-dumpable: its /proc files become root's although it runs as nobody (once it runs
        // the orchestrator: setpriv between its setuid and its exec is non-dumpable too).
        func command(_ pid: Int32) -> String {
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
            return comm.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let hardened = await waitUntil(timeout: .seconds(30)) {
            command(orchestrator.processIdentifier) == "orchestrator" && owner(orchestrator.processIdentifier) == 0
        }
        XCTAssertTrue(hardened, "the orchestrator made itself non-dumpable")
        XCTAssertTrue(orchestrator.isRunning)
        let read = try readAsNobody(orchestrator.processIdentifier)
        XCTAssertFalse(read.contains(secret), read)
        XCTAssertTrue(read.contains("Permission denied"), read)
    }
}
