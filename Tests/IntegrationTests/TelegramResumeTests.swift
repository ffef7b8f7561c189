import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import Store
import Synchronization
import TestSupport
import XCTest

@testable import Workers

/// A split Telegram message rate-limited part-way resumes at the part that failed: a retry never
/// sends again what Telegram already took.
final class TelegramResumeTests: DatabaseTestCase {
    override func setUp() async throws {
        try await super.setUp()
        try await ReplicaStore(pool: database.pool).register(id: "t1", name: "t1", host: "test", pid: 1, role: "worker")
    }

    /// Telegram: records each accepted message's text; answers 429 (retry after 1 s) to the
    /// `refuse`-th request only.
    private func telegram(received: CallLog, refuse: Int) -> Router<BasicRequestContext> {
        let router = Router()
        let requests = Mutex(0)
        router.post("/botTOKEN/sendMessage") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let count = requests.withLock { count in
                count += 1
                return count
            }
            if count == refuse {
                let refusal = #"{"ok":false,"error_code":429,"parameters":{"retry_after":1}}"#
                return Response(status: .tooManyRequests, body: ResponseBody(byteBuffer: ByteBuffer(string: refusal)))
            }
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any]
            received.append(object?["text"] as? String ?? "")
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        return router
    }

    func testA429OnTheSecondOfThreePartsResumesAtTheSecond() async throws {
        let received = CallLog()
        let jobs = JobStore(pool: database.pool)
        // Three lines of 3,000 characters: three messages.
        let text = ["A", "B", "C"].map { String(repeating: $0, count: 3000) }.joined(separator: "\n")
        try await StandInServer.with(telegram(received: received, refuse: 2)) { api in
            let notifier = Notifier(telegram: TelegramSettings(apiURL: api, token: "TOKEN", chatID: "42"), plane: nil)
            var registry = JobRegistry()
            for handler in notifier.handlers(pool: database.pool) { registry.register(handler) }
            let worker = QueueWorker(
                configuration: .init(
                    replicaID: "t1", queues: notifier.workerQueues(["default"]), pollInterval: .milliseconds(100),
                    retryInitial: .milliseconds(100),
                    retryMaximum: .seconds(1)),
                store: jobs, registry: registry, listener: nil, logger: testLogger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: worker)], gracefulShutdownSignals: [], logger: testLogger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                await Alerts(jobs: jobs).raise(text, key: "split")
                let delivered = await waitUntil(timeout: .seconds(20)) { received.all.count >= 3 }
                XCTAssertTrue(delivered, "\(received.all.map { $0.prefix(30) })")
                // Nothing more comes (no retry re-sends the first part).
                let finished = try await waitUntil(timeout: .seconds(10)) {
                    let open = try await self.database.pool.query(
                        "SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')"
                    ).first
                    return try open?.decode("n", as: Int.self) == 0
                }
                XCTAssertTrue(finished, "every job ended")
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
        let texts = received.all
        XCTAssertEqual(texts.count, 3, "\(texts.map { $0.prefix(30) })")
        XCTAssertEqual(texts.first, "<b>⚠️ orchestrator</b> " + String(repeating: "A", count: 3000))
        XCTAssertEqual(texts.dropFirst().first, String(repeating: "B", count: 3000))
        XCTAssertEqual(texts.last, String(repeating: "C", count: 3000))
        XCTAssertEqual(texts.filter { $0.contains("AAA") }.count, 1, "the first part was received exactly once")
        let statuses = try await database.pool.query("SELECT kind, status FROM jobs ORDER BY id").rows.map {
            "\(try $0.decode("kind", as: String.self)) \(try $0.decode("status", as: String.self))"
        }
        XCTAssertEqual(statuses, ["notify.alert completed", "notify.alert completed"], "the rest went as a second job")
    }
}
