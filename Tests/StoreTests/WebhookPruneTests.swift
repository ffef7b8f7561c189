import Foundation
import Store
import TestSupport
import XCTest

/// `webhook_deliveries` is pruned by retention (issue #9, item 8): finished deliveries older than
/// the retention go, in batches; pending ones and recent ones stay, and a redelivery inside the
/// window is still recognised.
final class WebhookPruneTests: DatabaseTestCase {
    var store: WebhookStore!

    override func setUp() async throws {
        try await super.setUp()
        store = WebhookStore(pool: database.pool)
    }

    private func gitea(_ id: String) -> WebhookStore.Delivery {
        WebhookStore.Delivery(
            source: .gitea, deliveryID: id, bodySHA256: "sha-\(id)", event: "push",
            payload: JSONB(text: #"{"ref":"x"}"#))
    }

    @discardableResult
    private func stored(_ id: String, status: String, ageDays: Int) async throws -> Int64 {
        let deliveryID: Int64
        switch try await store.record(gitea(id)) {
        case .accepted(let delivery, _), .ignored(let delivery): deliveryID = delivery
        case .duplicate: throw TestSetupError("\(id) was a duplicate")
        }
        if status != "pending" {
            try await store.finish(id: deliveryID, status: DeliveryStatus(rawValue: status)!, reason: nil)
        }
        try await database.pool.query(
            "UPDATE webhook_deliveries SET received_at = now() - make_interval(days => $2::int) WHERE id = $1",
            [deliveryID, ageDays])
        return deliveryID
    }

    private func remaining() async throws -> Set<String> {
        let rows = try await database.pool.query("SELECT delivery_id FROM webhook_deliveries").rows
        return Set(try rows.map { try $0.decode("delivery_id") })
    }

    func testOldFinishedDeliveriesArePrunedPendingAndRecentOnesKept() async throws {
        for index in 0..<5 { try await stored("old-processed-\(index)", status: "processed", ageDays: 40) }
        try await stored("old-ignored", status: "ignored", ageDays: 40)
        try await stored("old-failed", status: "failed", ageDays: 31)
        try await stored("old-pending", status: "pending", ageDays: 90)
        try await stored("recent-processed", status: "processed", ageDays: 2)

        // Batches of 2: several statements, every old finished row still goes.
        let pruned = try await store.prune(retention: .seconds(30 * 86400), batchSize: 2)
        XCTAssertEqual(pruned, 7)
        let kept = try await remaining()
        XCTAssertEqual(kept, ["old-pending", "recent-processed"])

        // A redelivery inside the window is still a duplicate; one of a pruned delivery is new.
        let again = try await store.record(gitea("recent-processed"))
        XCTAssertEqual(again, .duplicate)
        guard case .accepted = try await store.record(gitea("old-processed-0")) else {
            return XCTFail("a redelivery after the retention is stored anew")
        }
        let nothing = try await store.prune(retention: .seconds(30 * 86400))
        XCTAssertEqual(nothing, 0)
    }
}
