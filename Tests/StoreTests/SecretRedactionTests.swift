import Foundation
import Store
import TestSupport
import XCTest

/// Configured secrets never reach task events or lessons (issue #9, item 7): the stores redact
/// them on the way in.
final class SecretRedactionTests: DatabaseTestCase {
    let admin = "admin-token-1f2e3d4c"
    let gitea = "gitea-token-9a8b7c6d"

    override func setUp() async throws {
        try await super.setUp()
        SecretRedactor.shared.configure(secrets: [admin, gitea, "short", nil])
    }

    override func tearDown() async throws {
        SecretRedactor.shared.configure(secrets: [])
        try await super.tearDown()
    }

    func testTheRedactorReplacesSecretsSkipsShortValuesAndCaps() {
        let redactor = SecretRedactor()
        redactor.configure(
            secrets: ["abc", "s3cret-value", "s3cret-value-longer", nil]
                + SecretRedactor.databasePasswords("postgresql://orch:p%40ss-word1@db:5432/orch"))
        XCTAssertEqual(redactor.count, 4, "the 3-character value is ignored")
        XCTAssertEqual(redactor.redact("abc s3cret-value-longer s3cret-value"), "abc [REDACTED] [REDACTED]")
        XCTAssertEqual(
            redactor.redact("url postgresql://orch:p%40ss-word1@db, decoded p@ss-word1"),
            "url postgresql://orch:[REDACTED]@db, decoded [REDACTED]")
        let conninfo = SecretRedactor.databasePasswords("host=db password='conn-secret' dbname=orch")
        XCTAssertEqual(conninfo, ["conn-secret", "conn-secret"])
        XCTAssertEqual(SecretRedactor.databasePasswords("postgresql://orch@db/orch"), [])
        let long = String(repeating: "x", count: 10_000) + "s3cret-value" + String(repeating: "y", count: 10_000)
        let capped = redactor.redact(long, limit: 4000)
        XCTAssertLessThanOrEqual(capped.count, 4000)
        XCTAssertTrue(capped.hasPrefix("xxx") && capped.hasSuffix("yyy") && capped.contains("characters omitted"))
        XCTAssertFalse(capped.contains("s3cret-value"))
    }

    func testTaskEventsAndLessonsAreStoredRedacted() async throws {
        let tasks = TaskStore(pool: database.pool)
        _ = try await tasks.upsert(
            workItem: "ORCH-7", repo: "acme/orch", title: "t", description: "", labels: [], track: .full, auto: true,
            planeIssueID: nil, planeProjectID: nil, planeState: nil)
        let output = "test_command failed:\nADMIN=\(admin)\nGITEA=\(gitea)\nshort stays"
        try await tasks.apply(.stageFailed(final: false), workItem: "ORCH-7", actor: "system", reason: output)
        let reason = try await tasks.history(workItem: "ORCH-7").last?.reason ?? ""
        XCTAssertEqual(reason, "test_command failed:\nADMIN=[REDACTED]\nGITEA=[REDACTED]\nshort stays")

        var lesson = Lesson(type: "gate_failure", rootCause: output + String(repeating: "z", count: 9000))
        lesson.suggestion = "rotate \(admin)"
        lesson.detail = JSONB(text: #"{"output":"\#(gitea)"}"#)
        lesson.workItem = "ORCH-7"
        let stored = try await LessonStore(pool: database.pool).record(lesson)
        let texts = [stored.rootCause, stored.suggestion ?? "", stored.detail.text]
        for text in texts {
            XCTAssertFalse(text.contains(admin) || text.contains(gitea), text)
        }
        XCTAssertTrue(stored.rootCause.contains("ADMIN=[REDACTED]"))
        XCTAssertLessThanOrEqual(stored.rootCause.count, SecretRedactor.maxTextLength)
        XCTAssertEqual(stored.detail.text.replacingOccurrences(of: " ", with: ""), #"{"output":"[REDACTED]"}"#)
    }
}
