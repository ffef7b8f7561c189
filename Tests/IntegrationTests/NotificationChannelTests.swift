import Foundation
import Hummingbird
import NIOCore
import Store
import TestSupport
import XCTest

@testable import Workers

/// A replica without a channel's settings never takes that channel's notification jobs; a
/// replica with them delivers them (issue #10, item 11). Two real `orchestrator` processes.
final class NotificationChannelTests: DatabaseTestCase {
    var processes: [OrchestratorProcess] = []

    override func tearDown() async throws {
        await OrchestratorProcess.stopAll(processes, testFailed: testRun?.hasSucceeded == false)
        processes = []
        try await super.tearDown()
    }

    /// Telegram: records the text of each message, answers 200.
    private func telegram(received: CallLog) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/botTOKEN/sendMessage") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any]
            received.append(object?["text"] as? String ?? "")
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        return router
    }

    private func start(_ name: String, _ environment: [String: String] = [:]) async throws -> String {
        let process = try OrchestratorProcess(
            name: name, databaseURL: database.url, environment: environment.merging(["ORCH_POLL_INTERVAL": "1s"]) { $1 }
        )
        processes.append(process)
        let registered = try await waitUntil(timeout: .seconds(30)) { try await self.replicaID(name) != nil }
        XCTAssertTrue(registered, "replica \(name) registered")
        return try await replicaID(name) ?? ""
    }

    private func replicaID(_ name: String) async throws -> String? {
        try await database.pool.query("SELECT id FROM replicas WHERE name = $1 AND stopped_at IS NULL", [name]).first?
            .decode("id")
    }

    private struct Row: Equatable, CustomStringConvertible {
        let kind: String
        let status: String
        let attempt: Int
        let lockedBy: String?
        let lastError: String?
        var description: String { "\(kind) \(status) attempt \(attempt) by \(lockedBy ?? "-") \(lastError ?? "")" }
    }

    private func notificationJobs() async throws -> [Row] {
        try await database.pool.query(
            "SELECT kind, status, attempt, locked_by, last_error FROM jobs WHERE kind LIKE 'notify.%' ORDER BY id"
        ).rows.map {
            Row(
                kind: try $0.decode("kind"), status: try $0.decode("status"), attempt: try $0.decode("attempt"),
                lockedBy: try $0.decode("locked_by"), lastError: try $0.decode("last_error"))
        }
    }

    func testOnlyTheReplicaWithTelegramTakesTelegramJobs() async throws {
        let jobs = JobStore(pool: database.pool)
        // Queued by an earlier version, which put every notification job in `default`.
        let event = #"""
            {"event_id": 1, "event": "cancel", "work_item": "ORCH-7", "title": "Old", "from_stage": "analysis",
             "to_stage": "analysis", "from_status": "active", "to_status": "cancelled", "reason": null, "actor": "plane",
             "plane_issue_id": null, "plane_project_id": null}
            """#
        try await jobs.enqueue(
            NewJob(kind: "notify.telegram", queue: "default", payload: JSONB(text: event), maxAttempts: 10))
        // Queued now: a task event turned into jobs by a leader with Telegram, and an alert.
        let tasks = TaskStore(pool: database.pool)
        let notifications = NotificationStore(pool: database.pool)
        _ = try await tasks.upsert(
            workItem: "ORCH-8", repo: "acme/orch", title: "New", description: "", labels: [], track: .full,
            auto: false, planeIssueID: nil, planeProjectID: nil, planeState: nil)
        try await notifications.enqueueNew(channels: ["telegram"])  // the cursor starts here
        try await tasks.apply(.cancel, workItem: "ORCH-8", actor: "test", reason: "no longer needed")
        let enqueued = try await notifications.enqueueNew(channels: ["telegram"])
        XCTAssertEqual(enqueued, 1)
        let settings = TelegramSettings(apiURL: URL(string: "http://127.0.0.1:9")!, token: "TOKEN", chatID: "42")
        await Notifier(telegram: settings, plane: nil).alerts(pool: database.pool).raise(
            "disk almost full", key: "disk")
        let queued = try await notificationJobs()
        XCTAssertEqual(queued.count, 3)

        // A replica without Telegram works the queue: a job queued after the notifications runs
        // (so it has claimed whatever it would), and the notifications are left alone.
        let bare = try await start("bare")
        let marker = try await jobs.enqueue(NewJob(kind: "diag.noop"))!
        let markerDone = try await waitUntil(timeout: .seconds(30)) {
            try await jobs.job(id: marker)?.status == .completed
        }
        XCTAssertTrue(markerDone, "the replica without Telegram runs jobs")
        let markerOwner = try await jobs.job(id: marker)?.lockedBy
        XCTAssertEqual(markerOwner, bare)
        for job in try await notificationJobs() {
            XCTAssertEqual(
                job, Row(kind: job.kind, status: "queued", attempt: 0, lockedBy: nil, lastError: nil),
                "untouched: \(job)")
        }

        // A replica with Telegram delivers them, each at its first attempt.
        let received = CallLog()
        try await StandInServer.with(telegram(received: received)) { api in
            let sender = try await start(
                "sender",
                [
                    "ORCH_TELEGRAM_BOT_TOKEN": "TOKEN", "ORCH_TELEGRAM_CHAT_ID": "42",
                    "ORCH_TELEGRAM_API_URL": api.absoluteString,
                ])
            let delivered = try await waitUntil(timeout: .seconds(30)) {
                try await self.notificationJobs().allSatisfy { $0.status == "completed" }
            }
            let final = try await notificationJobs()
            XCTAssertTrue(delivered, "\(final)")
            for job in final {
                XCTAssertEqual(
                    job, Row(kind: job.kind, status: "completed", attempt: 1, lockedBy: sender, lastError: nil))
            }
        }
        let texts = received.all
        XCTAssertEqual(texts.count, 3, "\(texts)")
        XCTAssertTrue(texts.contains { $0.contains("ORCH-7") }, "the earlier version's job too")
        XCTAssertTrue(texts.contains { $0.contains("ORCH-8") })
        XCTAssertTrue(texts.contains { $0.contains("disk almost full") })
    }

    func testWorkerQueuesFollowTheChannelsThatAreOn() {
        let telegram = TelegramSettings(apiURL: URL(string: "https://api.telegram.org")!, token: "t", chatID: "1")
        XCTAssertEqual(Notifier(telegram: nil, plane: nil).workerQueues(["default"]), ["default"])
        XCTAssertEqual(
            Notifier(telegram: telegram, plane: nil).workerQueues(["default"]), ["default", "notify.telegram"])
        XCTAssertEqual(
            Notifier(telegram: nil, plane: nil).workerQueues(["default", "notify.telegram", "notify.plane_comment"]),
            ["default"],
            "an off channel's queue is never claimed, even when configured")
        XCTAssertEqual(
            Notifier(telegram: telegram, plane: nil).workerQueues(["notify.telegram", "default"]),
            ["notify.telegram", "default"])
    }
}
