import XCTest

@testable import Workers

final class NotifierTests: XCTestCase {
    func testTelegramTextIsEscapedAndSplitAtTheLimit() {
        XCTAssertEqual(Notifier.escapeHTML("a <b> & c"), "a &lt;b&gt; &amp; c")
        let line = String(repeating: "<", count: 30) + "\n"
        let text = String(repeating: line, count: 300)  // 9,300 characters, 36,000 escaped
        let chunks = Notifier.telegramChunks(text, limit: 4096)
        XCTAssertTrue(chunks.allSatisfy { $0.utf16.count <= 4096 })
        XCTAssertEqual(
            chunks.joined().replacingOccurrences(of: "&lt;", with: "<").filter { $0 == "<" }.count, 9000, "nothing lost"
        )
        XCTAssertTrue(
            chunks.dropLast().allSatisfy { !$0.hasSuffix("&") && !$0.hasSuffix("&l") && !$0.hasSuffix("&lt") },
            "no cut escape")
        // One long line with no break is cut anyway.
        let long = Notifier.telegramChunks(String(repeating: "x", count: 10_000), limit: 4096)
        XCTAssertEqual(long.map(\.count), [4096, 4096, 1808])
        XCTAssertEqual(Notifier.telegramChunks("short"), ["short"])
    }
}
