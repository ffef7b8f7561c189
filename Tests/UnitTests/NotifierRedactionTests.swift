import Foundation
import Store
import XCTest

@testable import Workers

/// Telegram and Plane texts are built redacted and capped (issue #9, item 7).
final class NotifierRedactionTests: XCTestCase {
    override func tearDown() {
        SecretRedactor.shared.configure(secrets: [])
    }

    func testTheNotificationTextCarriesNoSecretAndNoEndlessOutput() throws {
        let token = "telegram-bot-token-0042"
        SecretRedactor.shared.configure(secrets: [token])
        let reason = "test_command failed with exit 1:\n\(token)\n" + String(repeating: "line of output\n", count: 2000)
        let json: [String: Any] = [
            "event_id": 1, "event": "stage_failed", "work_item": "ORCH-1", "title": "Crash \(token)",
            "from_stage": "development", "to_stage": "development", "from_status": "active", "to_status": "active",
            "reason": reason, "actor": "system",
        ]
        let event = try JSONDecoder().decode(Notifier.Event.self, from: JSONSerialization.data(withJSONObject: json))
        let text = Notifier.text(event)
        XCTAssertFalse(text.contains(token), "the secret is redacted")
        XCTAssertTrue(text.contains("[REDACTED]"))
        XCTAssertLessThanOrEqual(text.count, SecretRedactor.maxTextLength)
        XCTAssertTrue(text.hasPrefix("ORCH-1 Crash [REDACTED]\n"), String(text.prefix(80)))
    }
}
