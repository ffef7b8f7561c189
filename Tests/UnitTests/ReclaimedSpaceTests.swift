import Workers
import XCTest

/// What a prune command's output says it freed.
final class ReclaimedSpaceTests: XCTestCase {
    func testDockersSummaryLines() {
        XCTAssertEqual(
            ReclaimedSpace.parse("Deleted build cache objects:\nabc\n\nTotal reclaimed space: 1.2GB\n"), 1_200_000_000)
        XCTAssertEqual(ReclaimedSpace.parse("Total reclaimed space: 0B"), 0)
        XCTAssertEqual(ReclaimedSpace.parse("Total reclaimed space: 2.5kB"), 2500)
        XCTAssertEqual(ReclaimedSpace.parse("ID\tRECLAIMABLE\nTotal:\t512MB"), 512_000_000)
        XCTAssertEqual(ReclaimedSpace.parse("reclaimed space: 1 GiB"), 1_073_741_824)
    }

    func testSeveralLinesAddUp() {
        XCTAssertEqual(
            ReclaimedSpace.parse("Total reclaimed space: 1MB\nTotal reclaimed space: 500kB"), 1_500_000)
    }

    func testOutputThatDoesNotSayGivesNothing() {
        XCTAssertNil(ReclaimedSpace.parse(""))
        XCTAssertNil(ReclaimedSpace.parse("pruned some things\nTotal reclaimed space: lots"))
        XCTAssertNil(ReclaimedSpace.parse("Total reclaimed space: 3 parsecs"))
    }
}
