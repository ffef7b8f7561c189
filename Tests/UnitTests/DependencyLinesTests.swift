import Store
import XCTest

/// `Depends on` / `Blocked by` lines of a work item's description.
final class DependencyLinesTests: XCTestCase {
    func testTheFormsOperatorsWrite() {
        let description = """
            Add the export.

            Depends on ORCH-12
            blocked by: ORCH-7, ORCH-9 and APP-3
            - Depends on ORCH-12 (again)
            Not a dependency: ORCH-99
            Depends on the design review
            """
        XCTAssertEqual(DependencyLines.parse(description), ["ORCH-12", "ORCH-7", "ORCH-9", "APP-3"])
    }

    /// Plane's plain-text description joins paragraphs with spaces: the phrase counts in a sentence.
    func testThePhraseInsideASentence() {
        XCTAssertEqual(
            DependencyLines.parse("Steps to reproduce: open a draft, press save. Depends on ORCH-97"), ["ORCH-97"])
        XCTAssertEqual(DependencyLines.parse("This one is blocked by APP-4 & APP-5; later"), ["APP-4", "APP-5"])
    }

    func testNothingThatIsNotAWorkItem() {
        XCTAssertEqual(DependencyLines.parse("Depends on orch-1, ORCH-, -12, ORCH-1x, ORCH-1-2"), [])
        XCTAssertEqual(DependencyLines.parse(""), [])
        XCTAssertEqual(DependencyLines.parse("Depends on ORCH-1. Then ORCH-2 ships."), ["ORCH-1"])
    }
}
