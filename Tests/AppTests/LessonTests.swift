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
    private func app(_ environment: [String: String] = [:]) throws -> some ApplicationProtocol {
        Application(
            router: HTTPRoutes.router(
                pool: database.pool,
                configuration: try AppConfiguration(environment: environment.merging(["ORCH_ADMIN_TOKEN": "t"]) { $1 })
            ))
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
                (.post, "/lessons", "{}", .badRequest, "missing 'lesson_type'"),
                (.post, "/lessons", #"{"lesson_type":"x","colour":"red"}"#, .badRequest, "unknown field 'colour'"),
                (.post, "/lessons", #"{"lesson_type":7}"#, .badRequest, "'lesson_type' must be a string"),
                (
                    .post, "/lessons", #"{"lesson_type":"x","task_id":"12"}"#, .badRequest,
                    "'task_id' must be an integer"
                ),
                (
                    .post, "/lessons", #"{"lesson_type":"x","detail":"text"}"#, .badRequest,
                    "'detail' must be a JSON object"
                ),
                (.post, "/lessons", #"{"lesson_type":"x","status":"maybe"}"#, .badRequest, "unknown 'status'"),
                (.post, "/lessons", #"{"lesson_type":" "}"#, .badRequest, "'lesson_type' must not be empty"),
                (.post, "/lessons", #"{"lesson_type":"a","type":"b"}"#, .badRequest, "'type' and its alias disagree"),
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

    func testSeedShapedLessonRoundTrips() async throws {
        try await app().test(.router) { client in
            let seed = """
                {"lesson_type":"flaky_ci","work_item_id":"ORCH-9","task_id":null,"stage":"merge","agent":"default",
                 "repo":"acme/orch","root_cause":"CI timed out on the runner","suggestion":"raise ci_timeout",
                 "status":"open","related_task":"ORCH-3","attribution":"infrastructure","target_repo":"acme/ci",
                 "target_domain":"ci","detail":{"runner":"r2","minutes":31}}
                """
            var id = 0
            try await client.execute(uri: "/lessons", method: .post, headers: Self.auth, body: ByteBuffer(string: seed))
            { response in
                XCTAssertEqual(response.status, .created)
                let body = Self.object(response.body)
                XCTAssertEqual(body["ok"] as? Bool, true)
                id = body["id"] as? Int ?? 0
                XCTAssertGreaterThan(id, 0)
                let lesson = body["lesson"] as? [String: Any]
                XCTAssertEqual(lesson?["type"] as? String, "flaky_ci", "types are free text")
                XCTAssertEqual(lesson?["work_item"] as? String, "ORCH-9")
                XCTAssertEqual(lesson?["related_task"] as? String, "ORCH-3")
                XCTAssertEqual(lesson?["target_domain"] as? String, "ci")
            }
            // The seed required only lesson_type.
            try await client.execute(
                uri: "/lessons", method: .post, headers: Self.auth, body: ByteBuffer(string: #"{"lesson_type":"note"}"#)
            ) { response in
                XCTAssertEqual(response.status, .created)
            }
            try await client.execute(uri: "/lessons?type=flaky_ci", method: .get, headers: Self.auth) { response in
                let lessons = Self.object(response.body)["lessons"] as? [[String: Any]]
                XCTAssertEqual(lessons?.count, 1)
                XCTAssertEqual(lessons?.first?["root_cause"] as? String, "CI timed out on the runner")
            }
            try await client.execute(uri: "/lessons?type=never_recorded", method: .get, headers: Self.auth) {
                response in
                XCTAssertEqual(response.status, .ok, "a type no lesson has yet is no error")
                XCTAssertEqual((Self.object(response.body)["lessons"] as? [Any])?.count, 0)
            }
            let change =
                #"{"lesson_type":"ci_capacity","status":"accepted","root_cause":"too few runners","detail":{"ticket":"OPS-4"}}"#
            try await client.execute(
                uri: "/lessons/\(id)", method: .post, headers: Self.auth, body: ByteBuffer(string: change)
            ) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["id"] as? Int, id)
                let lesson = body["lesson"] as? [String: Any]
                XCTAssertEqual(lesson?["type"] as? String, "ci_capacity")
                XCTAssertEqual(lesson?["status"] as? String, "accepted")
                XCTAssertEqual(lesson?["root_cause"] as? String, "too few runners")
                XCTAssertEqual(lesson?["suggestion"] as? String, "raise ci_timeout", "fields not sent are kept")
            }
            try await client.execute(
                uri: "/lessons/\(id)", method: .post, headers: Self.auth,
                body: ByteBuffer(string: #"{"status":"fixed","oops":1}"#)
            ) { response in
                XCTAssertEqual(response.status, .badRequest)
                XCTAssertTrue((Self.object(response.body)["error"] as? String ?? "").hasPrefix("unknown field 'oops'"))
            }
        }
        let stored = try await database.pool.query(
            "SELECT status, detail->>'runner' AS runner, detail->>'ticket' AS ticket FROM lessons WHERE type = 'ci_capacity'"
        ).first
        XCTAssertEqual(try stored?.decode("status", as: String.self), "accepted", "the refused change wrote nothing")
        XCTAssertEqual(try stored?.decode("runner", as: String.self), "r2", "detail is merged, not replaced")
        XCTAssertEqual(try stored?.decode("ticket", as: String.self), "OPS-4")
    }

    func testSwitchedOffTheRoutesAnswerEnabledFalse() async throws {
        try await app(["ORCH_LESSONS_ENABLED": "0"]).test(.router) { client in
            for (method, uri) in [
                (HTTPRequest.Method.get, "/lessons"), (.post, "/lessons"), (.post, "/lessons/1"),
            ] {
                try await client.execute(
                    uri: uri, method: method, headers: Self.auth,
                    body: ByteBuffer(string: #"{"lesson_type":"x","root_cause":"y"}"#)
                ) { response in
                    XCTAssertEqual(response.status, .ok, uri)
                    let body = Self.object(response.body)
                    XCTAssertEqual(body["enabled"] as? Bool, false, uri)
                    XCTAssertEqual(body.count, 1, uri)
                }
            }
        }
        let count = try await database.pool.query("SELECT count(*) AS n FROM lessons").first!.decode("n", as: Int.self)
        XCTAssertEqual(count, 0)
    }

    func testJournalSettingsComeFromTheEnvironment() throws {
        XCTAssertEqual(
            try AppConfiguration(environment: [:]).lessons, .init(enabled: true, dedupWindow: .seconds(3600)))
        let set = try AppConfiguration(environment: ["ORCH_LESSONS_ENABLED": "0", "ORCH_LESSONS_DEDUP_WINDOW": "15m"])
        XCTAssertEqual(set.lessons, .init(enabled: false, dedupWindow: .seconds(900)))
        XCTAssertThrowsError(try AppConfiguration(environment: ["ORCH_LESSONS_DEDUP_WINDOW": "soon"])) { error in
            XCTAssertEqual((error as? ConfigurationError)?.key, "ORCH_LESSONS_DEDUP_WINDOW")
        }
    }
}
