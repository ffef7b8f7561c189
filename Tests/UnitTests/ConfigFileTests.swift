import Foundation
import Store
import Workers
import XCTest

@testable import App

final class ConfigFileTests: XCTestCase {
    /// The whole example of DESIGN §3 (keys of the agent loop, issue #15, included) starts.
    func testTheDesignExampleParses() throws {
        let file = try ConfigFile.parse(
            """
            repos:
              - project: ORCH
                plane_project_id: 9d8c7b6a-5f4e-4d3c-8b2a-190817263544
                repo: acme/orch
                clone_url: https://git.example.com/acme/orch.git
                default_branch: main
                test_command: ["swift", "test"]
                coverage_command: ["scripts/coverage.sh"]
                deploy_command: ["scripts/deploy.sh"]
                health_url: https://orch.example.com/health
                max_active_tasks: 1
                coverage: { policy: ratchet, floor: 60, epsilon: 0.5 }
                post_deploy: { window: 5m, interval: 15s, timeout: 5s, failures: 3 }
                merge_verify: { window: 20m }
                ci_fix_rounds: 2
                allowed_actors: ["someone@example.com"]
            agents:
              default:
                command: ["claude", "-p", "--output-format", "stream-json", "--verbose"]
                timeout: 45m
                stall_timeout: 10m
                resume: ["--resume", "{session_id}"]
                budget: ["--max-budget-usd", "{remaining_usd}"]
              reviewer: { command: ["claude", "-p", "--output-format", "json", "--permission-mode", "plan"] }
            budgets: { per_task_usd: 20, per_repo_day_usd: 100, per_day_usd: 300 }
            labels: { stop: HALT }
            """)
        XCTAssertEqual(file.repos.count, 1)
        XCTAssertEqual(file.repos[0].project, "ORCH")
        XCTAssertEqual(file.repos[0].planeProjectID, "9d8c7b6a-5f4e-4d3c-8b2a-190817263544")
        XCTAssertEqual(file.repos[0].testCommand, ["swift", "test"])
        XCTAssertEqual(file.repos.first?.gates.maxActiveTasks, 1)
        XCTAssertEqual(file.agents["default"]?.timeout, .seconds(45 * 60))
        XCTAssertNil(file.agents["reviewer"]?.timeout)
        XCTAssertEqual(file.agents["default"]?.effectiveStallTimeout, .seconds(10 * 60))
        XCTAssertEqual(file.repos[0].allowedActors, ["someone@example.com"])
        XCTAssertEqual(file.repos[0].ciFixRounds, 2)
        XCTAssertEqual(file.budgets, BudgetLimits(perTaskUSD: 20, perRepoDayUSD: 100, perDayUSD: 300))
        XCTAssertEqual(file.agents["default"]?.budgetArguments(remaining: 3.456), ["--max-budget-usd", "3.46"])
        XCTAssertEqual(file.agents["default"]?.budgetArguments(remaining: nil), [], "no limit: no argument")
        XCTAssertEqual(file.agents["default"]?.runners[0].resuming("s-1")?.suffix(2), ["--resume", "s-1"])
        XCTAssertNil(file.agents["reviewer"]?.runners[0].resuming("s-1"), "no resume template: always fresh")
        XCTAssertEqual(file.labels.stop, "HALT")
        XCTAssertEqual(file.labels.auto, "auto")
        XCTAssertEqual(try ConfigFile.parse("repos: []").repos, [])
    }

    /// `stall_timeout`: a duration, `off`, or absent for the default (10m).
    func testStallTimeoutIsADurationOrOff() throws {
        let file = try ConfigFile.parse(
            """
            agents:
              default: { command: [claude], stall_timeout: 90s }
              reviewer: { command: [claude], stall_timeout: off }
              analyst: { command: [claude] }
            """)
        XCTAssertEqual(file.agents["default"]?.effectiveStallTimeout, .seconds(90))
        XCTAssertNil(file.agents["reviewer"]?.effectiveStallTimeout, "off: never stopped for silence")
        XCTAssertEqual(file.agents["analyst"]?.effectiveStallTimeout, AgentCommand.defaultStallTimeout)
        XCTAssertThrowsError(try ConfigFile.parse("agents:\n  default: { command: [claude], stall_timeout: 0s }\n")) {
            XCTAssertTrue(
                "\($0)".contains("agents.default.stall_timeout: expected a duration such as 10m (or off)"), "\($0)")
        }
    }

    /// Runner choice (issue #15 item 7): `runners` in order, each with its argv, format and resume.
    func testRunnersAreReadInOrderWithTheirFormats() throws {
        let file = try ConfigFile.parse(
            """
            agents:
              default:
                runners:
                  - { command: [claude, -p, --model, sonnet], format: claude-stream-json, resume: [--resume, "{session_id}"] }
                  - { command: [claude, -p, --model, opus] }
                  - { command: [codex, exec, -], format: plain }
              reviewer: { command: [gemini, -p, review], format: plain }
            """)
        let runners = try XCTUnwrap(file.agents["default"]?.runners)
        XCTAssertEqual(runners.map(\.command.last), ["sonnet", "opus", "-"])
        XCTAssertEqual(runners.map(\.format.name), ["claude-stream-json", "claude-json", "plain"])
        XCTAssertEqual(runners[0].resuming("s")?.suffix(2), ["--resume", "s"])
        XCTAssertNil(runners[1].resume)
        XCTAssertEqual(file.agents["default"]?.runner(forTry: 0).index, 0)
        XCTAssertEqual(file.agents["default"]?.runner(forTry: 1).index, 1)
        XCTAssertEqual(file.agents["default"]?.runner(forTry: 7).index, 2, "the last runner for every later try")
        XCTAssertEqual(file.agents["reviewer"]?.runners.map(\.format.name), ["plain"])

        for (yaml, expected) in [
            ("default: { runners: [] }", "agents.default.runners: must list at least one runner"),
            (
                "default: { command: [a], runners: [{ command: [b] }] }",
                "agents.default.runners: give command or runners, not both"
            ),
            ("default: { timeout: 5m }", "agents.default.command: missing: give command, or runners"),
            (
                "default: { runners: [{ command: [b], format: yaml }] }",
                "agents.default.runners[0].format: unknown format 'yaml'; expected one of claude-json, claude-stream-json, plain"
            ),
            ("default: { format: plain, runners: [{ command: [b] }] }", "agents.default.format: goes in each runner"),
            (
                "default: { runners: [{ command: [b] }, { command: [] }] }",
                "agents.default.runners[1].command: must be a non-empty argv list"
            ),
        ] {
            XCTAssertThrowsError(try ConfigFile.parse("agents:\n  \(yaml)\n"), yaml) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }

    /// DESIGN §3: unknown keys are an error at start, never silently ignored.
    func testAnUnknownKeyStopsTheStartWithItsPath() {
        let cases: [(String, String)] = [
            (
                "repos:\n  - project: ORCH\n    repo: acme/orch\n    clone_url: /srv/git/orch\n    tset_command: [\"true\"]\n",
                "repos[0].tset_command: unknown key; did you mean 'test_command'?"
            ),
            ("repo: []\n", "repo: unknown key; did you mean 'repos'? known here: agents, budgets, labels, repos"),
            (
                "agents:\n  default: { command: [\"a\"], timout: 5m }\n",
                "agents.default.timout: unknown key; did you mean 'timeout'?"
            ),
            ("labels: { stpo: HALT }\n", "labels.stpo: unknown key; did you mean 'stop'?"),
            (
                "repos:\n  - project: ORCH\n    repo: acme/orch\n    clone_url: /x\n    post_deploy: { windows: 5m }\n",
                "repos[0].post_deploy.windows: unknown key; did you mean 'window'?"
            ),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try ConfigFile.parse(yaml), yaml) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should contain \(expected)")
            }
        }
    }

    /// Issue #15 item 9: every unknown key is listed (not only the first), each with the nearest
    /// known name when it looks like a typo, and none when nothing is close.
    func testEveryUnknownKeyIsListedWithTheNearestKnownName() throws {
        let yaml = """
            repos:
              - project: ORCH
                repo: acme/orch
                clone_url: /x
                max_actve_tasks: 2
            budgets: { per_tsk_usd: 5 }
            colour: blue
            """
        let problems = try ConfigKeys.problems(yaml).map(\.description)
        XCTAssertEqual(problems.count, 3, "\(problems)")
        XCTAssertTrue(problems[0].contains("repos[0].max_actve_tasks: unknown key; did you mean 'max_active_tasks'?"))
        XCTAssertTrue(problems[1].contains("budgets.per_tsk_usd: unknown key; did you mean 'per_task_usd'?"))
        XCTAssertTrue(problems[2].contains("colour: unknown key; known here:"), problems[2])
        XCTAssertFalse(problems[2].contains("did you mean"), "nothing is close to 'colour'")
        XCTAssertEqual(ConfigKeys.editDistance("timout", "timeout"), 1)
        XCTAssertEqual(ConfigKeys.editDistance("stpo", "stop"), 1, "a swap is one edit")
        XCTAssertNil(ConfigKeys.nearest(to: "x", in: ["repos", "agents"]))
    }

    func testProblemsNameTheKey() {
        let base = "    clone_url: /srv/git/orch\n"
        let cases: [(String, String)] = [
            ("repos:\n  - project: ORCH\n" + base, "repos[0].repo: missing"),
            ("repos:\n  - project: orch\n    repo: acme/orch\n" + base, "repos[0].project:"),
            ("repos:\n  - project: ORCH\n    repo: acme\n" + base, "repos[0].repo: must be owner/name"),
            (
                "repos:\n  - project: ORCH\n    repo: acme/orch\n    test_command: \"swift test\"\n" + base,
                "repos[0].test_command: must be a list of strings"
            ),
            (
                "repos:\n  - project: ORCH\n    repo: acme/orch\n    test_command: []\n" + base,
                "repos[0].test_command: must be a non-empty argv list"
            ),
            (
                "repos:\n  - project: ORCH\n    repo: acme/orch\n    health_url: nope\n" + base,
                "repos[0].health_url: must be an http(s) URL"
            ),
            (
                "repos:\n  - project: ORCH\n    repo: a/b\n" + base + "  - project: ORCH\n    repo: c/d\n" + base,
                "repos[1].project: ORCH is configured twice"
            ),
            ("agents:\n  default: { command: [claude], timeout: soon }\n", "agents.default.timeout:"),
            (
                "agents:\n  default: { command: [claude], resume: [\"--resume\"] }\n",
                "agents.default.resume: must be an argv list containing {session_id}"
            ),
            (
                "repos:\n  - project: ORCH\n    repo: acme/orch\n    ci_fix_rounds: -1\n" + base,
                "repos[0].ci_fix_rounds:"
            ),
            ("budgets: { per_day_usd: 0 }\n", "budgets.per_day_usd: must be a positive amount in USD"),
            (
                "agents:\n  default: { command: [claude], budget: [\"--max-budget-usd\"] }\n",
                "agents.default.budget: must be an argv list containing {remaining_usd}"
            ),
            ("repos: [", "ORCH_CONFIG"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try ConfigFile.parse(yaml), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }

    func testTheBinaryRefusesABadConfigFile() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("orch-bad-\(UUID().uuidString).yaml")
            .path
        try "repos:\n  - project: ORCH\n    repo: nope\n    clone_url: x\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AppConfiguration(environment: ["ORCH_CONFIG": path])) { error in
            XCTAssertTrue("\(error)".contains("repos[0].repo"), "\(error)")
        }
        XCTAssertThrowsError(try AppConfiguration(environment: ["ORCH_CONFIG": "/nonexistent/orch.yaml"])) { error in
            XCTAssertTrue("\(error)".contains("ORCH_CONFIG"), "\(error)")
        }
    }
}
