import Foundation
import XCTest

@testable import Workers

/// How printed lines become stored events (issue #15 item 4), without a database.
final class RunEventRecorderTests: XCTestCase {
    func testAJSONLineKeepsItsObjectAndTypeAndAnyOtherLineIsText() throws {
        let json = RunEventRecorder.event(#"{"type":"assistant","message":{"content":[]}}"#)
        XCTAssertEqual(json.kind, "assistant")
        XCTAssertEqual(json.json, #"{"type":"assistant","message":{"content":[]}}"#)
        XCTAssertEqual(RunEventRecorder.event(#"{"no_type":1}"#).kind, "json")

        let plain = RunEventRecorder.event(#"compiling "main.swift" \ 50% / done"#)
        XCTAssertEqual(plain.kind, "line")
        let decoded = try JSONSerialization.jsonObject(with: Data(plain.json.utf8), options: .fragmentsAllowed)
        XCTAssertEqual(decoded as? String, #"compiling "main.swift" \ 50% / done"#, "stored as a JSON string")
        // A line that looks like JSON but is not stays text.
        XCTAssertEqual(RunEventRecorder.event("{not json").kind, "line")
    }
}
