import Foundation
import TestSupport
import XCTest

@testable import Workers

/// Short-lived commands (git, gate and deploy commands) through `CommandRunner`.
final class CommandRunnerTests: XCTestCase {
    private var python: String {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
    }

    func testOutputAndErrorAreCapturedTogetherWithTheExitCode() async throws {
        let directory = FileManager.default.temporaryDirectory.path
        let script = "import os, sys; print(os.getcwd()); print('to stderr', file=sys.stderr); sys.exit(5)"
        let result = try await CommandRunner().run([python, "-c", script], in: directory, check: false)
        XCTAssertEqual(result.exitCode, 5)
        XCTAssertTrue(result.output.contains("to stderr"), result.output)
        XCTAssertTrue(
            result.output.contains(URL(fileURLWithPath: directory).resolvingSymlinksInPath().path), result.output)
        do {
            try await CommandRunner().run([python, "-c", script], in: directory)
            XCTFail("a non-zero exit with check throws")
        } catch let failure as CommandRunner.Failure {
            XCTAssertEqual(failure.exitCode, 5)
            XCTAssertTrue(failure.description.contains("to stderr"))
        }
    }

    func testACommandIsFoundOnThePathAndACommandThatCannotStartIsAnError() async throws {
        let result = try await CommandRunner().run(["git", "--version"], in: "/")
        XCTAssertTrue(result.output.hasPrefix("git version"), result.output)
        // argv[0] is the name as configured, as a shell would pass it, not the resolved path.
        let argv = try await CommandRunner().run(["cat", "/proc/self/cmdline"], in: "/")
        XCTAssertEqual(argv.output.split(separator: "\0").map(String.init), ["cat", "/proc/self/cmdline"])
        do {
            try await CommandRunner().run(["/nonexistent/tool"], in: "/")
            XCTFail("expected a spawn error")
        } catch {
            XCTAssertTrue("\(error)".contains("cannot start /nonexistent/tool"), "\(error)")
        }
    }

    /// Every run opens its output file (and swift-subprocess its pipes); none may stay open in
    /// this process, or a long-running replica runs out of descriptors.
    func testRunsLeaveNoDescriptorOpen() async throws {
        func openDescriptors() -> Int {
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        }
        let runner = CommandRunner()
        // The first run starts swift-subprocess's process monitor (an epoll descriptor, once).
        try await runner.run(["true"], in: "/")
        let before = openDescriptors()
        for _ in 0..<20 {
            try await runner.run([python, "-c", "import sys; print('out'); print('err', file=sys.stderr)"], in: "/")
            _ = try? await runner.run(["/nonexistent/tool"], in: "/")
        }
        let after = openDescriptors()
        XCTAssertLessThanOrEqual(after, before + 2, "descriptors before \(before), after 40 runs \(after)")
    }

    /// A command stopped because its caller was cancelled (shutdown, STOP, the job's timeout)
    /// did not fail: the run throws `CancellationError` instead of reporting an exit status a
    /// gate would read as a failed test.
    func testACancelledCommandThrowsCancellationNotAFailedExit() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let task = Task { try await CommandRunner().run(["sleep", "30"], in: "/", check: false) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        do {
            let result = try await task.value
            XCTFail("expected CancellationError, got exit \(result.exitCode)")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
        XCTAssertLessThan(clock.now - started, .seconds(10))
    }

    /// A command killed at its timeout says so.
    func testATimedOutCommandSaysSo() async throws {
        do {
            try await CommandRunner().run(["sleep", "30"], in: "/", timeout: .milliseconds(300))
            XCTFail("expected a failure")
        } catch let failure as CommandRunner.Failure {
            XCTAssertTrue(failure.description.contains("timed out after"), failure.description)
        }
    }

    /// A timeout that fires while the command is still being spawned (before its pid is known)
    /// still kills it.
    func testATimeoutRacingTheSpawnStillKillsTheCommand() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let result = try await CommandRunner().run(["sleep", "30"], in: "/", timeout: .zero, check: false)
        XCTAssertLessThan(clock.now - started, .seconds(10), "not left to run its 30 s")
        XCTAssertTrue([128 + SIGTERM, 128 + SIGKILL].contains(result.exitCode), "killed: \(result.exitCode)")
    }

    func testACommandPastItsTimeoutIsKilledWithItsWholeGroup() async throws {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("orch-cmd-\(UUID().uuidString).pid")
            .path
        defer { unlink(pidFile) }
        // A command that leaves a child behind and then hangs.
        let script = """
            import os, subprocess, time
            subprocess.Popen(["sleep", "300"])
            open("\(pidFile)", "w").write(str(os.getpgrp()))
            time.sleep(300)
            """
        let clock = ContinuousClock()
        let started = clock.now
        // Long enough for the interpreter to start and write the file on a loaded machine.
        let result = try await CommandRunner().run([python, "-c", script], in: "/", timeout: .seconds(3), check: false)
        XCTAssertLessThan(clock.now - started, .seconds(10))
        XCTAssertTrue(
            [128 + SIGTERM, 128 + SIGKILL].contains(result.exitCode), "killed at the timeout: \(result.exitCode)")
        let group = try XCTUnwrap(Int32(String(contentsOfFile: pidFile, encoding: .utf8)))
        let gone = await waitUntil(timeout: .seconds(5)) { livingProcesses(inGroup: Int(group)).isEmpty }
        XCTAssertTrue(gone, "no process of the command's group survives: \(livingProcesses(inGroup: Int(group)))")
    }
}
