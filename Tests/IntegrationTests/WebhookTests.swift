import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

final class WebhookTests: DatabaseTestCase {
    static let planeSecret = "plane-test-secret"
    static let giteaSecret = "gitea-test-secret"

    static let fixtures = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")

    static func fixture(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(path)))
    }

    private func app(
        _ environment: [String: String] = [
            "ORCH_PLANE_WEBHOOK_SECRET": planeSecret, "ORCH_GITEA_WEBHOOK_SECRET": giteaSecret,
        ], pool: ConnectionPool? = nil
    ) throws -> some ApplicationProtocol {
        Application(
            router: HTTPRoutes.router(
                pool: pool ?? database.pool, configuration: try AppConfiguration(environment: environment)))
    }

    private static func headers(_ pairs: [String: String]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs { fields[HTTPField.Name(name)!] = value }
        return fields
    }

    private static func planeHeaders(
        _ body: [UInt8], delivery: String = UUID().uuidString, secret: String = planeSecret
    ) -> HTTPFields {
        Self.headers([
            "X-Plane-Signature": WebhookSignature.hmacSHA256Hex(secret: secret, body: body),
            "X-Plane-Delivery": delivery, "Content-Type": "application/json",
        ])
    }

    private static func giteaHeaders(_ body: [UInt8], event: String, delivery: String = UUID().uuidString) -> HTTPFields
    {
        Self.headers([
            "X-Gitea-Signature": WebhookSignature.hmacSHA256Hex(secret: Self.giteaSecret, body: body),
            "X-Gitea-Event": event, "X-Gitea-Delivery": delivery,
        ])
    }

    private func count(_ sql: String) async throws -> Int {
        try await database.pool.query(sql).first!.decode("n")
    }

    private func storedRows() async throws -> Int {
        try await count("SELECT count(*) AS n FROM webhook_deliveries")
    }

    private static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    func testSignatureMatchesAKnownVector() {
        // RFC 4231 test case 2.
        XCTAssertEqual(
            WebhookSignature.hmacSHA256Hex(secret: "Jefe", body: Array("what do ya want for nothing?".utf8)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertTrue(
            WebhookSignature.verify(
                signature: "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843", secret: "Jefe",
                body: Array("what do ya want for nothing?".utf8)))
        XCTAssertFalse(
            WebhookSignature.verify(
                signature: "5bdcc146", secret: "Jefe", body: Array("what do ya want for nothing?".utf8)))
        XCTAssertEqual(
            WebhookSignature.sha256Hex(Array("abc".utf8)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testEveryFixtureIsAcceptedOnceWithItsProcessingJob() async throws {
        let plane = [
            "issue_created.json", "issue_updated_state.json", "issue_updated_stop_label.json", "comment_created.json",
        ]
        let gitea = [
            ("pull_request_opened.json", "pull_request"), ("pull_request_merged.json", "pull_request"),
            ("push.json", "push"),
            ("status_success.json", "status"), ("status_failure.json", "status"),
        ]
        try await app().test(.router) { client in
            for name in plane {
                let body = try Self.fixture("plane/\(name)")
                try await client.execute(
                    uri: "/webhook/plane", method: .post, headers: Self.planeHeaders(body),
                    body: ByteBuffer(bytes: body)
                ) { response in
                    XCTAssertEqual(response.status, .accepted, name)
                    XCTAssertEqual(Self.object(response.body)["status"] as? String, "accepted", name)
                }
                // Plane retries with a new delivery id and the same body: a duplicate.
                try await client.execute(
                    uri: "/webhook/plane", method: .post, headers: Self.planeHeaders(body),
                    body: ByteBuffer(bytes: body)
                ) { response in
                    XCTAssertEqual(response.status, .ok, name)
                    XCTAssertEqual(Self.object(response.body)["duplicate"] as? Bool, true, name)
                }
            }
            for (name, event) in gitea {
                let body = try Self.fixture("gitea/\(name)")
                let delivery = UUID().uuidString
                try await client.execute(
                    uri: "/webhook/gitea", method: .post,
                    headers: Self.giteaHeaders(body, event: event, delivery: delivery), body: ByteBuffer(bytes: body)
                ) { response in
                    XCTAssertEqual(response.status, .accepted, name)
                }
                try await client.execute(
                    uri: "/webhook/gitea", method: .post,
                    headers: Self.giteaHeaders(body, event: event, delivery: delivery), body: ByteBuffer(bytes: body)
                ) { response in
                    XCTAssertEqual(response.status, .ok, name)
                }
            }
        }
        let stored = try await storedRows()
        XCTAssertEqual(stored, plane.count + gitea.count)
        let jobs = try await count("SELECT count(*) AS n FROM jobs WHERE kind = 'process_webhook'")
        XCTAssertEqual(jobs, plane.count + gitea.count, "one processing job per delivery, enqueued with it")
        let linked = try await count("SELECT count(*) AS n FROM webhook_deliveries d JOIN jobs j ON j.id = d.job_id")
        XCTAssertEqual(linked, stored)
    }

    func testBadSignaturesAreRejectedAndNothingIsStored() async throws {
        let body = try Self.fixture("plane/issue_created.json")
        var flipped = body
        flipped[flipped.count / 2] ^= 0x01
        let tampered = flipped
        try await app().test(.router) { client in
            try await client.execute(
                uri: "/webhook/plane", method: .post, headers: Self.headers(["X-Plane-Delivery": "x"]),
                body: ByteBuffer(bytes: body)
            ) { response in
                XCTAssertEqual(response.status, .unauthorized)
                XCTAssertEqual(Self.object(response.body)["error"] as? String, "missing X-Plane-Signature")
            }
            try await client.execute(
                uri: "/webhook/plane", method: .post, headers: Self.planeHeaders(body, secret: "wrong"),
                body: ByteBuffer(bytes: body)
            ) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
            // Signed for the original bytes, sent with one bit flipped.
            try await client.execute(
                uri: "/webhook/plane", method: .post, headers: Self.planeHeaders(body),
                body: ByteBuffer(bytes: tampered)
            ) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
            let gitea = try Self.fixture("gitea/push.json")
            try await client.execute(
                uri: "/webhook/gitea", method: .post,
                headers: Self.headers(["X-Gitea-Event": "push", "X-Gitea-Signature": "00"]),
                body: ByteBuffer(bytes: gitea)
            ) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
        }
        let stored = try await storedRows()
        XCTAssertEqual(stored, 0)
    }

    func testNoSecretFailsClosedUnlessExplicitlyInsecure() async throws {
        let body = try Self.fixture("plane/issue_created.json")
        try await app([:]).test(.router) { client in
            try await client.execute(uri: "/webhook/plane", method: .post, body: ByteBuffer(bytes: body)) { response in
                XCTAssertEqual(response.status, .unauthorized)
                XCTAssertTrue(
                    (Self.object(response.body)["error"] as? String ?? "").contains("ORCH_PLANE_WEBHOOK_SECRET"))
            }
        }
        var stored = try await storedRows()
        XCTAssertEqual(stored, 0)
        try await app(["ORCH_INSECURE_WEBHOOKS": "1"]).test(.router) { client in
            try await client.execute(uri: "/webhook/plane", method: .post, body: ByteBuffer(bytes: body)) { response in
                XCTAssertEqual(response.status, .accepted)
            }
        }
        stored = try await storedRows()
        XCTAssertEqual(stored, 1)
    }

    func testOversizedMalformedAndWrongShapesAreRejectedWithNothingStored() async throws {
        let cases: [(String, [UInt8], String?, HTTPResponse.Status, String?)] = [
            ("plane", Array(repeating: UInt8(ascii: "a"), count: (1 << 20) + 1), nil, .contentTooLarge, nil),
            ("plane", [0xff, 0xfe, 0x00, 0x41], nil, .badRequest, "body is not valid JSON"),
            ("plane", Array("[1, 2, 3]".utf8), nil, .badRequest, "body must be a JSON object"),
            ("plane", Array(#"{"event": "issue", "action": "created"}"#.utf8), nil, .badRequest, "missing 'data'"),
            (
                "plane", Array(#"{"event": 7, "action": "created", "data": {}}"#.utf8), nil, .badRequest,
                "'event' must be a string"
            ),
            (
                "plane",
                Array(
                    #"{"event": "issue", "action": "created", "data": {"id": "x", "sequence_id": "98", "project": "p", "name": "n"}}"#
                        .utf8), nil, .badRequest, "'data.sequence_id' must be an integer"
            ),
            (
                "plane",
                Array(
                    #"{"event": "issue", "action": "created", "data": {"id": "x", "sequence_id": true, "project": "p", "name": "n"}}"#
                        .utf8), nil, .badRequest, "'data.sequence_id' must be an integer"
            ),
            (
                "plane",
                Array(
                    #"{"event": "issue", "action": "created", "data": {"id": "x", "sequence_id": 1, "project": "p", "name": "bad \u0000 nul"}}"#
                        .utf8), nil, .badRequest, nil
            ),
            ("gitea", Array(#"{"sha": "abc"}"#.utf8), "status", .badRequest, "missing 'state'"),
            (
                "gitea", Array(#"{"ref": "refs/heads/main", "after": "abc"}"#.utf8), nil, .badRequest,
                "missing X-Gitea-Event header"
            ),
            (
                "gitea",
                Array(
                    #"{"action": "opened", "number": 1, "pull_request": {"head": {}}, "repository": {"full_name": "a/b"}}"#
                        .utf8), "pull_request", .badRequest, "missing 'pull_request.head.sha'"
            ),
        ]
        try await app().test(.router) { client in
            for (source, body, event, status, message) in cases {
                var fields = source == "plane" ? Self.planeHeaders(body) : Self.giteaHeaders(body, event: event ?? "")
                if source == "gitea", event == nil { fields[HTTPField.Name("X-Gitea-Event")!] = nil }
                try await client.execute(
                    uri: "/webhook/\(source)", method: .post, headers: fields, body: ByteBuffer(bytes: body)
                ) { response in
                    XCTAssertEqual(response.status, status, "\(message ?? "")")
                    let error = Self.object(response.body)["error"] as? String
                    XCTAssertNotNil(error, "every rejection has the seed's error body")
                    if let message { XCTAssertEqual(error, message) }
                }
            }
        }
        let stored = try await storedRows()
        XCTAssertEqual(stored, 0)
    }

    func testUnknownEventIsStoredAsIgnoredWithoutAJob() async throws {
        let body = Array(#"{"event": "cycle", "action": "created", "data": {"id": "c1"}}"#.utf8)
        try await app().test(.router) { client in
            try await client.execute(
                uri: "/webhook/plane", method: .post, headers: Self.planeHeaders(body), body: ByteBuffer(bytes: body)
            ) { response in
                XCTAssertEqual(response.status, .accepted)
                XCTAssertEqual(Self.object(response.body)["status"] as? String, "ignored")
            }
        }
        let row = try await database.pool.query("SELECT status, reason, job_id FROM webhook_deliveries").first!
        XCTAssertEqual(try row.decode("status", as: String.self), "ignored")
        XCTAssertEqual(try row.decode("reason", as: String?.self), "Plane event 'cycle' is not handled")
        XCTAssertNil(try row.decode("job_id", as: Int64?.self))
    }

    func testTheSameDeliveryRacingThroughTwoPoolsIsStoredOnce() async throws {
        // Two replicas share nothing but the database: two pools, sixteen simultaneous copies.
        let other = database.makePool()
        defer { Task { await other.close() } }
        let stores = [WebhookStore(pool: database.pool), WebhookStore(pool: other)]
        let body = try Self.fixture("gitea/status_success.json")
        let delivery = WebhookStore.Delivery(
            source: .gitea, deliveryID: UUID().uuidString, bodySHA256: WebhookSignature.sha256Hex(body),
            event: "status",
            payload: JSONB(text: String(decoding: body, as: UTF8.self)))
        let outcomes = try await withThrowingTaskGroup(of: WebhookStore.Outcome.self) { group in
            for index in 0..<16 {
                let store = stores[index % 2]
                group.addTask { try await store.record(delivery) }
            }
            var all: [WebhookStore.Outcome] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        XCTAssertEqual(outcomes.filter { if case .accepted = $0 { return true } else { return false } }.count, 1)
        XCTAssertEqual(outcomes.filter { $0 == .duplicate }.count, 15)
        let stored = try await storedRows()
        XCTAssertEqual(stored, 1)
        let jobs = try await count("SELECT count(*) AS n FROM jobs WHERE kind = 'process_webhook'")
        XCTAssertEqual(jobs, 1)
    }
}
