import Foundation
import Store
import TestSupport
import XCTest

@testable import Workers

/// The agent launcher with the example agent (`examples/agent/agent.py`) as the agent.
final class AgentLauncherTests: DatabaseTestCase {
    var directory: URL!

    override func setUp() async throws {
        try await super.setUp()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-agent-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("work"), withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        try? FileManager.default.removeItem(at: directory)
    }

    private var agent: String { packageRoot.appendingPathComponent("examples/agent/agent.py").path }

    /// The interpreter itself, not a version-manager shim (pyenv's adds variables of its own to
    /// the environment the agent sees).
    private var python: String {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
    }

    private func launcher(grace: Duration = .seconds(5)) -> AgentLauncher {
        AgentLauncher(
            settings: .init(
                logDirectory: directory.appendingPathComponent("logs").path, replicaID: "r1", host: "test-host",
                terminationGrace: grace),
            pool: database.pool, logger: testLogger)
    }

    private func request(
        _ options: [String] = [], prompt: String = "Fix the crash", timeout: Duration = .seconds(30),
        stage: String = "analysis"
    ) -> AgentLauncher.Request {
        AgentLauncher.Request(
            command: [python, agent] + options, timeout: timeout, prompt: prompt,
            directory: directory.appendingPathComponent("work").path,
            variables: [
                "ORCH_WORK_ITEM": "ORCH-98", "ORCH_STAGE": stage, "ORCH_ROLE": "default", "NOT_ORCH": "dropped",
            ],
            workItem: "ORCH-98", jobID: nil, stage: stage, role: "default")
    }

    func testHostilePromptReachesTheAgentOnlyOnStdinAndSecretsStayOut() async throws {
        setenv("ORCH_ADMIN_TOKEN", "super-secret-admin-token", 1)
        setenv("ORCH_DATABASE_URL", "postgresql://secret@db/orch", 1)
        defer {
            unsetenv("ORCH_ADMIN_TOKEN")
            unsetenv("ORCH_DATABASE_URL")
        }
        let marker = directory.appendingPathComponent("pwned").path
        let hostile =
            "Title with \"quotes\" and 'single' $(touch \(marker)) `touch \(marker)` ; touch \(marker)\nsecond line\n$HOME"
        let dump = directory.appendingPathComponent("dump").path
        let outcome = try await launcher().run(request(["--dump", dump], prompt: hostile))
        XCTAssertTrue(outcome.succeeded)

        let prompt = try String(contentsOfFile: dump + "/prompt.txt", encoding: .utf8)
        XCTAssertEqual(prompt, hostile, "the prompt arrives byte for byte on stdin")
        let argv =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dump + "/argv.json")))
            as? [String]
        XCTAssertEqual(argv, [agent, "--dump", dump], "nothing of the prompt on the command line")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "no shell ever saw the prompt")

        let environment =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dump + "/env.json")))
            as? [String: String] ?? [:]
        XCTAssertNil(environment["ORCH_ADMIN_TOKEN"])
        XCTAssertNil(environment["ORCH_DATABASE_URL"])
        XCTAssertNil(environment["NOT_ORCH"])
        XCTAssertEqual(environment["ORCH_WORK_ITEM"], "ORCH-98")
        XCTAssertEqual(environment["ORCH_RUN_ID"], String(outcome.runID))
        XCTAssertNotNil(environment["PATH"])
        let extra = Set(environment.keys).subtracting(AgentLauncher.inheritedEnvironment).filter {
            !$0.hasPrefix("ORCH_")
        }
        XCTAssertEqual(extra, [], "only the allowlist and ORCH_* task variables")
    }

    func testTheAgentRunsInAProcessGroupOfItsOwnWithOnlyItsStandardDescriptors() async throws {
        // This test process holds database sockets and other descriptors; none may reach the agent.
        let held = open("/dev/null", O_RDONLY)
        defer { close(held) }
        XCTAssertGreaterThan(held, 3)
        let dump = directory.appendingPathComponent("dump").path
        let outcome = try await launcher().run(request(["--dump", dump]))
        XCTAssertTrue(outcome.succeeded)
        struct Facts: Decodable {
            let pid: Int32
            let pgid: Int32
            let fds: [Int32]
        }
        let facts = try JSONDecoder().decode(
            Facts.self, from: Data(contentsOf: URL(fileURLWithPath: dump + "/process.json")))
        XCTAssertEqual(facts.pgid, facts.pid, "the agent leads a process group of its own")
        XCTAssertNotEqual(facts.pgid, getpgrp())
        let run = try await AgentRunStore(pool: database.pool).run(id: outcome.runID)
        XCTAssertEqual(run?.pid, Int(facts.pid), "the recorded pid is the agent's")
        XCTAssertEqual(
            Set(facts.fds).subtracting([0, 1, 2]).count, 1,
            "only stdin, stdout, stderr (and the listing's own descriptor): \(facts.fds)")
        XCTAssertFalse(facts.fds.contains(held))
        // stdout and stderr both land in the run's log.
        let log = try String(contentsOfFile: outcome.logPath, encoding: .utf8)
        XCTAssertTrue(log.contains("example agent: dumped its input"), "stderr is in the log")
        XCTAssertTrue(log.contains("total_cost_usd"), "stdout is in the log")
    }

    func testAnAgentThatExitsWithoutReadingItsPromptIsNotAnError() async throws {
        // Far more than a pipe holds: the write fails with EPIPE once the agent is gone.
        let prompt = String(repeating: "a long prompt line\n", count: 200_000)
        var quick = request(prompt: prompt)
        quick.command = [python, "-c", "import sys; sys.stdout.write('exited unread'); sys.exit(4)"]
        let clock = ContinuousClock()
        let started = clock.now
        let outcome = try await launcher().run(quick)
        XCTAssertLessThan(clock.now - started, .seconds(10))
        XCTAssertEqual(outcome.exitCode, 4)
        XCTAssertFalse(outcome.timedOut)
        XCTAssertFalse(outcome.cancelled)
        XCTAssertTrue(try String(contentsOfFile: outcome.logPath, encoding: .utf8).contains("exited unread"))
        let run = try await AgentRunStore(pool: database.pool).run(id: outcome.runID)
        XCTAssertEqual(run?.exitCode, 4)
    }

    func testTheRunIsRecordedWithItsUsageAndCost() async throws {
        let outcome = try await launcher().run(request())
        XCTAssertEqual(outcome.exitCode, 0)
        let spec = directory.appendingPathComponent("work/docs/tasks/ORCH-98/spec.md").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: spec), "the example agent wrote the analysis output")
        let run = try await AgentRunStore(pool: database.pool).run(id: outcome.runID)
        XCTAssertEqual(run?.exitCode, 0)
        XCTAssertNotNil(run?.endedAt)
        XCTAssertNotNil(run?.pid)
        XCTAssertNotNil(run?.processStart)
        XCTAssertEqual(run?.host, "test-host")
        XCTAssertEqual(run?.usage.costUSD, 0.0123)
        XCTAssertEqual(run?.usage.inputTokens, 1200)
        XCTAssertEqual(run?.usage.outputTokens, 340)
        XCTAssertEqual(run?.usage.cacheReadTokens, 800)
        XCTAssertEqual(run?.usage.cacheWriteTokens, 100)
        XCTAssertEqual(run?.usage.model, "example-agent-1")
        XCTAssertEqual(run?.usage.subtype, "success")
        XCTAssertEqual(run?.logPath, outcome.logPath)
        XCTAssertTrue(try String(contentsOfFile: outcome.logPath, encoding: .utf8).contains("total_cost_usd"))

        let plain = try await launcher().run(request(["--plain"]))
        let plainRun = try await AgentRunStore(pool: database.pool).run(id: plain.runID)
        XCTAssertEqual(plainRun?.exitCode, 0)
        XCTAssertNil(plainRun?.usage.costUSD, "a plain-text agent's cost is unknown, not zero")

        let failing = try await launcher().run(request(["--exit", "3"]))
        XCTAssertEqual(failing.exitCode, 3)
        XCTAssertFalse(failing.succeeded)
        let totals = try await AgentRunStore(pool: database.pool).totals()
        XCTAssertEqual(totals.runs, 3)
        XCTAssertEqual(totals.costUSD, 0.0246, accuracy: 1e-9)
    }

    func testAHungAgentIsKilledWithItsWholeProcessGroupAtTheTimeout() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let outcome = try await launcher(grace: .milliseconds(500)).run(
            request(["--spawn-child", "--sleep", "60"], timeout: .seconds(1)))
        let took = clock.now - started
        XCTAssertTrue(outcome.timedOut)
        XCTAssertFalse(outcome.succeeded)
        XCTAssertLessThan(took, .seconds(10))
        let run = try await AgentRunStore(pool: database.pool).run(id: outcome.runID)
        XCTAssertEqual(run?.timedOut, true)
        XCTAssertEqual(run?.error, "timed out after 1.0 seconds")
        let pid = try XCTUnwrap(run?.pid)
        let gone = await waitUntil(timeout: .seconds(5)) { livingProcesses(inGroup: pid).isEmpty }
        XCTAssertTrue(gone, "no process of the agent's group survives: \(livingProcesses(inGroup: pid))")
    }

    func testCancellingTheCallerStopsTheAgentAtOnce() async throws {
        let launcher = self.launcher(grace: .seconds(30))
        let request = self.request(["--spawn-child", "--sleep", "60"], timeout: .seconds(60))
        let clock = ContinuousClock()
        let started = clock.now
        let outcome = try await withThrowingTaskGroup(of: AgentLauncher.Outcome?.self) { group in
            group.addTask { try await launcher.run(request) }
            group.addTask {
                try await Task.sleep(for: .milliseconds(700))
                return nil
            }
            _ = try await group.next()  // the sleeper ends first
            group.cancelAll()
            var result: AgentLauncher.Outcome?
            for try await value in group { result = result ?? value }
            return result
        }
        XCTAssertLessThan(clock.now - started, .seconds(5), "a cancelled run does not wait for the termination grace")
        let cancelled = try XCTUnwrap(outcome)
        XCTAssertTrue(cancelled.cancelled)
        let run = try await AgentRunStore(pool: database.pool).run(id: cancelled.runID)
        XCTAssertEqual(run?.error, "cancelled")
        let pid = try XCTUnwrap(run?.pid)
        let gone = await waitUntil(timeout: .seconds(5)) { livingProcesses(inGroup: pid).isEmpty }
        XCTAssertTrue(gone)
    }

    func testAnAgentThatCannotStartIsRecordedAndReported() async throws {
        var bad = request()
        bad.command = ["/nonexistent/agent-binary"]
        do {
            _ = try await launcher().run(bad)
            XCTFail("expected a spawn error")
        } catch {
            XCTAssertTrue("\(error)".contains("cannot start /nonexistent/agent-binary"), "\(error)")
        }
        let rows = try await database.pool.query("SELECT exit_code, error FROM agent_runs").rows
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(try rows[0].decode("exit_code", as: Int.self), -1)
    }

    func testResultParsingCoversJSONStreamJSONAndPlainText() {
        let json =
            #"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"ok","total_cost_usd":0.5,"usage":{"input_tokens":10,"output_tokens":5}}"#
        XCTAssertEqual(AgentResultParser.parse("warning on stderr\n" + json + "\n")?.costUSD, 0.5)
        let stream =
            #"{"type":"system","subtype":"init"}"# + "\n" + #"{"type":"assistant","message":{}}"# + "\n"
            + #"{"type":"result","subtype":"error_max_turns","is_error":true,"total_cost_usd":1.25,"usage":{"input_tokens":7}}"#
        let parsed = AgentResultParser.parse(stream)
        XCTAssertEqual(parsed?.subtype, "error_max_turns")
        XCTAssertEqual(parsed?.isError, true)
        XCTAssertEqual(parsed?.inputTokens, 7)
        let pretty = "log line\n{\n  \"type\": \"result\",\n  \"total_cost_usd\": 2.0\n}\n"
        XCTAssertEqual(AgentResultParser.parse(pretty)?.costUSD, 2.0)
        XCTAssertNil(AgentResultParser.parse("Done. I changed three files.\n{not json"))
    }

    func testLogRotationKeepsRecentLogsUpToTheCount() throws {
        let logs = directory.appendingPathComponent("rotation")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        for index in 0..<6 {
            let path = logs.appendingPathComponent("run-\(index).log").path
            _ = FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
            // run-0 is 30 days old, the others a few minutes apart.
            let age: TimeInterval = index == 0 ? 30 * 86400 : TimeInterval(600 * (6 - index))
            try FileManager.default.setAttributes(
                [.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: path)
        }
        _ = FileManager.default.createFile(atPath: logs.appendingPathComponent("notes.txt").path, contents: Data())
        AgentLogRotation.prune(directory: logs.path, olderThan: .seconds(14 * 86400), keep: 3)
        let left = try FileManager.default.contentsOfDirectory(atPath: logs.path).sorted()
        XCTAssertEqual(left, ["notes.txt", "run-3.log", "run-4.log", "run-5.log"])
    }
}
