import Foundation
import Store
import TestSupport
import XCTest

@testable import Workers

/// What an agent gets of its own (issue #9, items 7 and 8): a HOME per task, optionally another
/// user, and a log capped in size.
final class AgentIsolationTests: DatabaseTestCase {
    var directory: URL!

    override func setUp() async throws {
        try await super.setUp()
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("orch-isolation-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("work"), withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        try? FileManager.default.removeItem(at: directory)
    }

    private func launcher(
        maxLogBytes: Int = AgentLauncher.Settings.defaultMaxLogBytes, agents: [String: AgentCommand] = [:]
    ) -> AgentLauncher {
        AgentLauncher(
            settings: .init(
                logDirectory: directory.appendingPathComponent("logs").path, replicaID: "r1", host: "test-host",
                maxLogBytes: maxLogBytes, agents: agents),
            pool: database.pool, logger: testLogger)
    }

    private func request(_ script: String, role: String = "default") -> AgentLauncher.Request {
        AgentLauncher.Request(
            command: ["/bin/sh", "-c", script], timeout: .seconds(60), prompt: "p",
            directory: directory.appendingPathComponent("work").path,
            variables: ["ORCH_WORK_ITEM": "ORCH-98"], workItem: "ORCH-98", jobID: nil, stage: "analysis", role: role)
    }

    private func read(_ name: String) throws -> String {
        try String(contentsOfFile: directory.appendingPathComponent("work/\(name)").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testTheAgentGetsAHomeOfItsOwnPerTask() async throws {
        let outcome = try await launcher().run(
            request(
                """
                echo "$HOME" > home.txt; echo "$XDG_CONFIG_HOME" > config.txt; touch "$HOME/.planted"
                """))
        XCTAssertEqual(outcome.exitCode, 0)
        let home = directory.appendingPathComponent("homes/ORCH-98").path
        XCTAssertEqual(try read("home.txt"), home)
        XCTAssertEqual(try read("config.txt"), home + "/.config")
        XCTAssertNotEqual(home, ProcessInfo.processInfo.environment["HOME"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: home + "/.planted"), "the agent writes its own home")
        // A task's worktree (the Workspace layout) maps to <root>/homes/<WI>, for its commands too.
        XCTAssertEqual(TaskHome.path(forWorktree: "/srv/orch/worktrees/acme__orch/ORCH-12"), "/srv/orch/homes/ORCH-12")
        XCTAssertNil(TaskHome.path(forWorktree: "/srv/orch/elsewhere/ORCH-12"))
        let command = try await CommandRunner().run(["sh", "-c", "echo $HOME"], in: "/")
        let ownHome = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        XCTAssertFalse(command.output.contains(ownHome), command.output)
    }

    /// A log past its cap keeps its head and its most recent tail around a marker; the agent's
    /// result, its last line, is still read from it.
    func testALogPastItsCapKeepsHeadAndTail() async throws {
        let cap = 64 * 1024
        let outcome = try await launcher(maxLogBytes: cap).run(
            request(
                """
                echo first-line; head -c 1000000 /dev/zero | tr '\\0' 'a'; echo
                echo '{"type":"result","is_error":false,"total_cost_usd":0.5,"num_turns":1,"result":"ok"}'
                """))
        XCTAssertEqual(outcome.exitCode, 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: outcome.logPath)
        let size = try XCTUnwrap(attributes[.size] as? Int)
        XCTAssertLessThanOrEqual(size, cap + 100, "log capped")
        let log = try String(contentsOfFile: outcome.logPath, encoding: .utf8)
        XCTAssertTrue(log.hasPrefix("first-line\naaa"))
        XCTAssertTrue(log.contains("bytes omitted"))
        XCTAssertTrue(log.hasSuffix("\"result\":\"ok\"}\n"), String(log.suffix(120)))
        XCTAssertEqual(outcome.usage?.costUSD, 0.5, "the result is read from the kept tail")
        XCTAssertEqual(launcher(maxLogBytes: cap).settings.logTailBytes, cap / 2)
        XCTAssertEqual(launcher().settings.logTailBytes, 4 << 20)
    }

    /// `agents.<role>.user`: run as root, the orchestrator starts the agent as that user with its
    /// groups, gives it the worktree and its home, and takes the worktree back afterwards.
    func testAnAgentConfiguredWithAUserRunsAsThatUser() async throws {
        guard geteuid() == 0 else { throw XCTSkip("starting an agent as another user needs root") }
        setenv("ORCH_ADMIN_TOKEN", "isolation-admin-secret", 1)
        defer { unsetenv("ORCH_ADMIN_TOKEN") }
        let nobody = try ChildIdentity.resolve(user: "nobody", group: nil)
        let agents = ["default": AgentCommand(command: ["sh"], timeout: nil, identity: nobody)]
        let outcome = try await launcher(agents: agents).run(
            request(
                """
                id -u > uid.txt; id -G > groups.txt; echo "$HOME" > home.txt; echo "$USER" > user.txt
                touch "$HOME/written" && echo yes > home-writable.txt
                cat /proc/$PPID/environ > environ.txt 2>/dev/null || echo denied > environ-denied.txt
                """))
        XCTAssertEqual(outcome.exitCode, 0)
        XCTAssertEqual(try read("uid.txt"), "65534")
        XCTAssertFalse(try read("groups.txt").split(separator: " ").contains("0"), "root's group is not kept")
        XCTAssertEqual(try read("user.txt"), "nobody")
        XCTAssertEqual(try read("home-writable.txt"), "yes")
        XCTAssertEqual(try read("environ-denied.txt"), "denied", "another uid cannot read its parent's environment")
        XCTAssertFalse(((try? read("environ.txt")) ?? "").contains("isolation-admin-secret"))
        // The worktree is the orchestrator's again (its git refuses another owner's), the home
        // stays the agent's.
        let written = directory.appendingPathComponent("work/uid.txt").path
        let worktreeFile = try FileManager.default.attributesOfItem(atPath: written)
        XCTAssertEqual(worktreeFile[.ownerAccountID] as? UInt, 0)
        let home = try FileManager.default.attributesOfItem(atPath: try read("home.txt"))
        XCTAssertEqual(home[.ownerAccountID] as? UInt, 65534)
        // Another role falls back to default's identity only when it has no command of its own.
        XCTAssertEqual(launcher(agents: agents).settings.identity(role: "reviewer"), nobody)
        let own = agents.merging(["reviewer": AgentCommand(command: ["sh"], timeout: nil)]) { $1 }
        XCTAssertNil(launcher(agents: own).settings.identity(role: "reviewer"))
    }

    /// Gate and deploy commands run code the agent wrote: with `agents.default.user` they run as
    /// that user too, and the worktree is the orchestrator's again afterwards.
    func testGateCommandsRunAsTheAgentsUser() async throws {
        guard geteuid() == 0 else { throw XCTSkip("starting a command as another user needs root") }
        let nobody = try ChildIdentity.resolve(user: "nobody", group: nil)
        let work = directory.appendingPathComponent("work").path
        let (exit, output) = try await CommandRunner(identity: nobody).run(
            [
                "/bin/sh", "-c",
                "id -u > uid.txt && id -u && cat /proc/$PPID/environ >/dev/null 2>&1 || echo environ-denied",
            ],
            in: work, check: false)
        XCTAssertEqual(exit, 0)
        XCTAssertTrue(output.contains("65534"), output)
        XCTAssertTrue(output.contains("environ-denied"), output)
        let file = try FileManager.default.attributesOfItem(atPath: work + "/uid.txt")
        XCTAssertEqual(file[.ownerAccountID] as? UInt, 0, "taken back for the orchestrator's git")
    }
}
