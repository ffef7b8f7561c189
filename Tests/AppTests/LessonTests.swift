import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

final class LessonTests: DatabaseTestCase {
    private func app() throws -> some ApplicationProtocol {
        Application(
            router: HTTPRoutes.router(
                pool: database.pool, configuration: try AppConfiguration(environment: ["ORCH_ADMIN_TOKEN": "t"])))
    }

    private static var auth: HTTPFields {
        var fields = HTTPFields()
        fields[.authorization] = "Bearer t"
        return fields
    }

    private static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    func testRecordFilterAndReclassify() async throws {
        try await app().test(.router) { client in
            let manual =
                #"{"type":"gate_failure","work_item":"ORCH-9","repo":"acme/orch","stage":"development","root_cause":"tests were not run","suggestion":"run swift test in the prompt"}"#
            var id = 0
            try await client.execute(
                uri: "/lessons", method: .post, headers: Self.auth, body: ByteBuffer(string: manual)
            ) { response in
                XCTAssertEqual(response.status, .created)
                let lesson = Self.object(response.body)["lesson"] as? [String: Any]
                XCTAssertEqual(lesson?["source"] as? String, "manual")
                XCTAssertEqual(lesson?["status"] as? String, "open")
                id = lesson?["id"] as? Int ?? 0
            }
            try await client.execute(
                uri: "/lessons", method: .post, headers: Self.auth,
                body: ByteBuffer(string: #"{"type":"other","repo":"acme/web","root_cause":"flaky CI"}"#)
            ) { response in
                XCTAssertEqual(response.status, .created)
            }
            try await client.execute(uri: "/lessons?repo=acme/orch&type=gate_failure", method: .get, headers: Self.auth)
            { response in
                XCTAssertEqual(response.status, .ok)
                let lessons = Self.object(response.body)["lessons"] as? [[String: Any]]
                XCTAssertEqual(lessons?.count, 1)
                XCTAssertEqual(lessons?.first?["root_cause"] as? String, "tests were not run")
            }
            try await client.execute(
                uri: "/lessons/\(id)", method: .post, headers: Self.auth,
                body: ByteBuffer(string: #"{"status":"accepted","attribution":"prompt"}"#)
            ) { response in
                XCTAssertEqual(response.status, .ok)
                let lesson = Self.object(response.body)["lesson"] as? [String: Any]
                XCTAssertEqual(lesson?["status"] as? String, "accepted")
                XCTAssertEqual(lesson?["attribution"] as? String, "prompt")
            }
            try await client.execute(uri: "/lessons?status=open", method: .get, headers: Self.auth) { response in
                XCTAssertEqual((Self.object(response.body)["lessons"] as? [Any])?.count, 1)
            }
        }
        // Analysts' views see the same journal.
        let open = try await database.pool.query("SELECT count(*) AS n FROM lessons_open").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(open, 1)
        let byType = try await database.pool.query("SELECT total FROM lessons_by_type WHERE type = 'gate_failure'")
            .first!.decode("total", as: Int.self)
        XCTAssertEqual(byType, 1)
    }

    func testBadLessonInputIsRefusedWithNothingWritten() async throws {
        try await app().test(.router) { client in
            let cases: [(HTTPRequest.Method, String, String, HTTPResponse.Status, String)] = [
                (.post, "/lessons", #"{"type":"gate_failure"}"#, .badRequest, "missing 'root_cause'"),
                (.post, "/lessons", #"{"type":"nonsense","root_cause":"x"}"#, .badRequest, "unknown 'type'"),
                (.post, "/lessons", "not json", .badRequest, "body must be a JSON object"),
                (.post, "/lessons/12345", #"{"status":"accepted"}"#, .notFound, "unknown lesson 12345"),
                (.post, "/lessons/abc", #"{"status":"accepted"}"#, .badRequest, "lesson id must be an integer"),
                (.get, "/lessons?limit=0", "", .badRequest, "'limit' must be an integer"),
                (.get, "/lessons?status=maybe", "", .badRequest, "unknown 'status'"),
            ]
            for (method, uri, body, status, message) in cases {
                try await client.execute(uri: uri, method: method, headers: Self.auth, body: ByteBuffer(string: body)) {
                    response in
                    XCTAssertEqual(response.status, status, uri)
                    XCTAssertTrue(
                        (Self.object(response.body)["error"] as? String ?? "").hasPrefix(message),
                        "\(uri): \(Self.object(response.body))")
                }
            }
            try await client.execute(uri: "/lessons", method: .get) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
        }
        let count = try await database.pool.query("SELECT count(*) AS n FROM lessons").first!.decode("n", as: Int.self)
        XCTAssertEqual(count, 0)
    }
}
