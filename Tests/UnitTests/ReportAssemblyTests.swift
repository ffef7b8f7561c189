import Foundation
import XCTest

@testable import Store
@testable import Workers

/// The `/queue` and `/metrics` reports assembled from figures in memory (no database): the keys an
/// operator's scripts read, the snake_case encoder's conversions, and what is left out.
final class ReportAssemblyTests: XCTestCase {
    private static let at = Date(timeIntervalSince1970: 1_700_000_000.25)

    private static func object(_ value: some Encodable) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: JSONEncoder.snakeCase.encode(value)) as? [String: Any] ?? [:]
    }

    func testQueueReportListsItsBlocksBesideTheFixedKeys() throws {
        let stop = StopBlock.Body(
            label: "STOP",
            summary: StopSummary(
                tasks: 2, jobs: 3, deferred: 1,
                recent: [.init(workItem: "ORCH-9", actor: "plane", reason: nil, at: Self.at)]))
        let bugs = BugFastTrackBlock.Body(
            label: "bug", summary: BugTrackSummary(byStatus: ["active": 1], architectureSkipped: 1, escalated: 0))
        let lessons = LessonsBlock.Body(
            settings: .init(enabled: false, dedupWindow: .seconds(900)),
            summary: LessonSummary(byStatus: ["open": 2], byType: ["other": 2], lastAt: nil))
        let report = QueueReport(
            counts: ["queued": 1], maxConcurrency: 4, pollInterval: 0.25, replicas: [], leader: nil,
            blocks: [
                .init(key: "stop", body: stop), .init(key: "bug_fast_track", body: bugs),
                .init(key: "lessons", body: lessons),
            ],
            recent: [])
        let body = try Self.object(report)
        XCTAssertEqual(
            Set(body.keys),
            ["counts", "max_concurrency", "poll_interval", "replicas", "stop", "bug_fast_track", "lessons", "recent"],
            "no leader key without a leader")
        XCTAssertEqual(body["poll_interval"] as? Double, 0.25)
        let stopJSON = body["stop"] as? [String: Any]
        XCTAssertEqual(stopJSON?["label"] as? String, "STOP")
        XCTAssertEqual(stopJSON?["scope"] as? String, "all")
        XCTAssertEqual(stopJSON?["cancelled_tasks"] as? Int, 2)
        XCTAssertEqual(stopJSON?["cancelled_stage_jobs"] as? Int, 3)
        XCTAssertEqual(stopJSON?["deferred"] as? Int, 1)
        let cancellation = (stopJSON?["recent"] as? [[String: Any]])?.first
        XCTAssertEqual(cancellation?["work_item"] as? String, "ORCH-9")
        XCTAssertEqual(cancellation?["at"] as? String, "2023-11-14T22:13:20.250Z", "ISO 8601 with milliseconds, UTC")
        XCTAssertNil(cancellation?["reason"], "an absent value is left out, not null")
        let bugsJSON = body["bug_fast_track"] as? [String: Any]
        XCTAssertEqual(
            Set(bugsJSON?.keys ?? [:].keys), ["label", "scope", "tasks", "architecture_skipped", "escalated"])
        XCTAssertEqual(bugsJSON?["tasks"] as? [String: Int], ["active": 1])
        let lessonsJSON = body["lessons"] as? [String: Any]
        XCTAssertEqual(
            Set(lessonsJSON?.keys ?? [:].keys), ["enabled", "dedup_window_seconds", "scope", "by_status", "by_type"])
        XCTAssertEqual(lessonsJSON?["enabled"] as? Bool, false)
        XCTAssertEqual(lessonsJSON?["dedup_window_seconds"] as? Double, 900)
    }

    func testResilienceShowsTheDeadlineOnlyWhileOpen() throws {
        let settings = BreakerSettings(threshold: 3, window: .seconds(300), cooldown: .seconds(120))
        let open = CircuitBreakerStore.State(
            name: "agents", failures: 0, openUntil: Self.at, isOpen: true, openedCount: 1, lastReason: "overloaded")
        let body = try Self.object(ResilienceBlock.Body(settings: settings, state: open, postponedJobs: 2))
        XCTAssertEqual(body["state"] as? String, "open")
        XCTAssertEqual(body["open_until"] as? String, "2023-11-14T22:13:20.250Z")
        XCTAssertEqual(body["failures_in_window"] as? Int, 0)
        XCTAssertEqual(body["window_seconds"] as? Double, 300)
        XCTAssertEqual(body["cooldown_seconds"] as? Double, 120)
        XCTAssertEqual(body["postponed_jobs"] as? Int, 2)
        let lapsed = CircuitBreakerStore.State(
            name: "agents", failures: 1, openUntil: Self.at, isOpen: false, openedCount: 1, lastReason: nil)
        let closed = try Self.object(ResilienceBlock.Body(settings: settings, state: lapsed, postponedJobs: 0))
        XCTAssertEqual(closed["state"] as? String, "closed")
        XCTAssertNil(closed["open_until"], "a past deadline is not shown")
    }

    func testReaperKeysItsDutiesByName() throws {
        let run = MaintenanceStore.Run(
            duty: "rescue", replicaID: "r-1", lastRunAt: Self.at, lastAffected: 2, totalAffected: 5, runs: 3,
            lastError: nil)
        let pruned = ["node-a", "node-b"].map {
            ReplicaMaintenanceStore.Run(
                duty: "worktree-prune", name: $0, host: "h", replicaID: "\($0)-1", lastRunAt: Self.at, lastAffected: 1,
                totalAffected: 4, runs: 2, lastError: nil)
        }
        let body = try Self.object(
            ReaperBlock.Body(
                enabled: true, leader: "r-1", heartbeatTTL: .seconds(15), jobRetention: .seconds(7 * 86400),
                worktreeRetention: .seconds(86400), agentLogRetention: .seconds(14 * 86400), runs: [run],
                replicaRuns: pruned))
        XCTAssertEqual(body["heartbeat_ttl_seconds"] as? Double, 15)
        XCTAssertEqual(body["job_retention_hours"] as? Double, 168)
        XCTAssertEqual(body["worktree_retention_hours"] as? Double, 24)
        XCTAssertEqual(body["agent_log_retention_hours"] as? Double, 336)
        XCTAssertEqual(body["scope"] as? String, "all")
        let rescue = (body["duties"] as? [String: [String: Any]])?["rescue"]
        XCTAssertEqual(
            Set(rescue?.keys ?? [:].keys), ["replica", "last_run_at", "last_affected", "total_affected", "runs"])
        let worktrees = (body["replica_duties"] as? [String: [[String: Any]]])?["worktree-prune"] ?? []
        XCTAssertEqual(worktrees.map { $0["name"] as? String }, ["node-a", "node-b"], "one record per replica")
        XCTAssertEqual(
            Set(worktrees.first?.keys ?? [:].keys),
            ["name", "host", "replica", "last_run_at", "last_affected", "total_affected", "runs"])
    }

    func testMetricsReportRoundsItsFigures() throws {
        let stages = [
            MetricsStore.StageFigures(stage: "analysis", tasks: ["active": 1], exits: 3, secondsSpent: 10.00049),
            MetricsStore.StageFigures(stage: "architecture", tasks: [:], exits: 0, secondsSpent: 0),
        ]
        let queue = QueueFigures(
            kinds: [MetricsStore.KindFigures(kind: "run_stage", counts: ["queued": 1])], byStatus: ["queued": 1],
            oldestReadySeconds: 1.23456)
        let cost = MetricsCost(
            totals: AgentRunTotals(runs: 2, costUSD: 0.1 + 0.2, input: 10, output: 20, cacheRead: 3, cacheWrite: 4),
            recentRuns: [])
        let report = MetricsReport(
            generatedAt: Self.at, clkTck: 100, stages: stages, queue: MetricsQueue(figures: queue, maxConcurrency: 4),
            agents: [], cost: cost)
        let body = try Self.object(report)
        XCTAssertEqual(body["schema_version"] as? Int, 1)
        XCTAssertEqual(body["generated_at"] as? String, "2023-11-14T22:13:20.250Z")
        XCTAssertEqual(body["clk_tck"] as? Int, 100)
        let encodedStages = body["stages"] as? [[String: Any]] ?? []
        XCTAssertEqual(encodedStages.first?["seconds_spent"] as? Double, 10)
        XCTAssertEqual(encodedStages.first?["avg_seconds"] as? Double, 3.333)
        XCTAssertNil(encodedStages.last?["avg_seconds"], "no average before a task left the stage")
        let queueJSON = body["queue"] as? [String: Any]
        XCTAssertEqual((queueJSON?["by_kind"] as? [String: [String: Int]])?["run_stage"], ["queued": 1])
        XCTAssertEqual(queueJSON?["oldest_ready_seconds"] as? Double, 1.235)
        XCTAssertEqual(queueJSON?["max_concurrency"] as? Int, 4)
        let costJSON = body["cost"] as? [String: Any]
        XCTAssertEqual(costJSON?["total_usd"] as? Double, 0.3)
        XCTAssertEqual(
            costJSON?["tokens"] as? [String: Int], ["input": 10, "output": 20, "cache_read": 3, "cache_write": 4])
    }

    func testStageCostsAreShownToTheMicroDollar() throws {
        let costs = [
            StageCost(stage: "analysis", runs: 1, costUSD: 0.1234567, input: 10, output: 20),
            StageCost(stage: "development", runs: 2, costUSD: 0.0000004, input: 0, output: 0),
        ]
        let encoded =
            try JSONSerialization.jsonObject(with: JSONEncoder.snakeCase.encode(costs)) as? [[String: Any]] ?? []
        XCTAssertEqual(
            Set(encoded.first?.keys ?? [:].keys), ["stage", "runs", "cost_usd", "input_tokens", "output_tokens"])
        XCTAssertEqual(encoded.first?["cost_usd"] as? Double, 0.123457)
        XCTAssertEqual(encoded.last?["cost_usd"] as? Double, 0)
    }
}
