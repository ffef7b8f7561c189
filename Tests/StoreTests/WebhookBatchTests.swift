import Foundation
import Store
import Synchronization
import TestSupport
import XCTest

/// The batched inbox write (`WebhookStore.record(batch:)`) behind `GroupCommit`: each delivery gets
/// the outcome it would get alone, duplicates inside and across batches included, and one bad body
/// fails only itself.
final class WebhookBatchTests: DatabaseTestCase {
    var store: WebhookStore!

    override func setUp() async throws {
        try await super.setUp()
        store = WebhookStore(pool: database.pool)
    }

    private func plane(_ n: Int, deliveryID: String? = nil, body: String? = nil) -> WebhookStore.Delivery {
        let text = body ?? #"{"event":"issue","n":\#(n)}"#
        return WebhookStore.Delivery(
            source: .plane, deliveryID: deliveryID, bodySHA256: "sha:" + text,
            event: "issue.created", payload: JSONB(text: text))
    }

    private func scalar(_ sql: String) async throws -> Int {
        try await database.pool.query(sql).first!.decode("n")
    }

    func testABatchGivesEveryDeliveryItsOwnOutcome() async throws {
        let earlier = plane(0)
        guard case .accepted = try await store.record(earlier) else { return XCTFail("first delivery not accepted") }
        let gitea = WebhookStore.Delivery(
            source: .gitea, deliveryID: "g-1", bodySHA256: "g", event: "push",
            payload: JSONB(text: #"{"ref":"refs/heads/main"}"#))
        let giteaRedelivered = WebhookStore.Delivery(
            source: .gitea, deliveryID: "g-1", bodySHA256: "g2", event: "push",
            payload: JSONB(text: #"{"ref":"refs/heads/main","again":true}"#))
        let ignored = WebhookStore.Delivery(
            source: .plane, deliveryID: nil, bodySHA256: "cycle", event: "cycle.created",
            payload: JSONB(text: "{}"), ignoredReason: "not handled")
        let batch = [plane(1), earlier, plane(2), plane(1, deliveryID: "other-id"), gitea, giteaRedelivered, ignored]
        let outcomes = try await store.record(batch: batch).map { try $0.get() }

        guard case .accepted(let first, let firstJob) = outcomes[0] else { return XCTFail("\(outcomes[0])") }
        XCTAssertEqual(outcomes[1], .duplicate, "a body stored by an earlier request")
        guard case .accepted = outcomes[2] else { return XCTFail("\(outcomes[2])") }
        XCTAssertEqual(outcomes[3], .duplicate, "the same Plane body under a new delivery id, in the same batch")
        guard case .accepted = outcomes[4] else { return XCTFail("\(outcomes[4])") }
        XCTAssertEqual(outcomes[5], .duplicate, "the same Gitea delivery id in the same batch")
        guard case .ignored = outcomes[6] else { return XCTFail("\(outcomes[6])") }

        let deliveries = try await scalar("SELECT count(*) AS n FROM webhook_deliveries")
        let jobs = try await scalar("SELECT count(*) AS n FROM jobs WHERE kind = 'process_webhook'")
        XCTAssertEqual(deliveries, 5, "earlier + 2 Plane + 1 Gitea + 1 ignored")
        XCTAssertEqual(jobs, 4, "one job per accepted delivery, none for the ignored one")
        let linked = try await database.pool.query(
            "SELECT job_id, (SELECT payload->>'delivery_id' FROM jobs WHERE id = d.job_id) AS named FROM webhook_deliveries d WHERE id = $1",
            [first]
        ).first!
        XCTAssertEqual(try linked.decode("job_id", as: Int64.self), firstJob)
        XCTAssertEqual(try linked.decode("named", as: String.self), String(first))
    }

    func testOneBodyPostgresRefusesFailsOnlyItself() async throws {
        // \u0000 is valid JSON but not storable in jsonb: the batch statement fails, and the
        // deliveries are retried one by one.
        let bad = plane(9, body: #"{"event":"issue","text":"\u0000"}"#)
        let outcomes = try await store.record(batch: [plane(1), bad, plane(2)])
        XCTAssertNotNil(try? outcomes[0].get())
        XCTAssertNotNil(try? outcomes[2].get())
        guard case .failure(let error as PostgresError) = outcomes[1] else { return XCTFail("\(outcomes[1])") }
        XCTAssertEqual(error.sqlState?.prefix(2), "22")
        let deliveries = try await scalar("SELECT count(*) AS n FROM webhook_deliveries")
        XCTAssertEqual(deliveries, 2)
    }

    func testGroupCommitBatchesConcurrentCallersAndAnswersEachOnce() async throws {
        let batches = BatchLog()
        let store = self.store!
        let inbox = GroupCommit<WebhookStore.Delivery, WebhookStore.Outcome>(maxBatch: 16, maxConcurrentFlushes: 1) {
            items in
            batches.record(items.count)
            return try await store.record(batch: items)
        }
        let outcomes = try await withThrowingTaskGroup(of: WebhookStore.Outcome.self) { group in
            for n in 0..<200 {
                // Every fourth delivery repeats an earlier body: it must come back as a duplicate.
                let delivery = plane(n % 4 == 3 ? n - 1 : n)
                group.addTask { try await inbox.submit(delivery) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(outcomes.count, 200)
        XCTAssertEqual(outcomes.filter { $0 == .duplicate }.count, 50)
        let deliveries = try await scalar("SELECT count(*) AS n FROM webhook_deliveries")
        let jobs = try await scalar("SELECT count(*) AS n FROM jobs")
        XCTAssertEqual(deliveries, 150)
        XCTAssertEqual(jobs, 150)
        XCTAssertEqual(batches.total, 200, "every item flushed exactly once")
        XCTAssertLessThan(batches.count, 200, "concurrent callers shared statements")
        XCTAssertLessThanOrEqual(batches.largest, 16)
    }

    func testGroupCommitGivesEveryCallerTheFlushError() async throws {
        struct Boom: Error {}
        let inbox = GroupCommit<Int, Int>(maxBatch: 8, maxConcurrentFlushes: 1) { items in
            if items.contains(where: { $0 < 100 }) { throw Boom() }
            return items.map { .success($0 * 2) }
        }
        let failures = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<20 { group.addTask { (try? await inbox.submit(n)) == nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        XCTAssertEqual(failures, 20)
        // The batcher is still usable afterwards: its flush slot was freed.
        let doubled = try await inbox.submit(121)
        XCTAssertEqual(doubled, 242)
    }
}

/// Sizes of the batches a flush closure saw.
private final class BatchLog: Sendable {
    private let sizes = Mutex<[Int]>([])
    func record(_ size: Int) { sizes.withLock { $0.append(size) } }
    var count: Int { sizes.withLock { $0.count } }
    var total: Int { sizes.withLock { $0.reduce(0, +) } }
    var largest: Int { sizes.withLock { $0.max() ?? 0 } }
}
