import XCTest

@testable import Workers

/// The coverage gate's decision: the ratchet's baseline and epsilon, the floor under both
/// policies, no baseline yet, and messages that carry both numbers.
final class CoverageGateTests: XCTestCase {
    private let ratchet = RepositoryGates.Coverage(policy: .ratchet, floor: 50, epsilon: 0.1)

    private func decide(
        _ measured: Double, baseline: Double?, _ settings: RepositoryGates.Coverage
    ) -> CoverageGate.Verdict {
        CoverageGate.decide(measured: measured, baseline: baseline, settings: settings, repo: "acme/app")
    }

    func testRatchetFailsBelowTheBaselineMinusEpsilonWithBothNumbers() {
        XCTAssertEqual(
            decide(72.4, baseline: 80, ratchet),
            .fail("coverage 72.4% is below the baseline 80.0% (epsilon 0.1) of acme/app"))
        XCTAssertEqual(decide(79.89, baseline: 80, ratchet).passed, false)
    }

    func testRatchetPassesWithinEpsilonAndAbove() {
        XCTAssertEqual(decide(79.9, baseline: 80, ratchet), .pass("coverage 79.9% (baseline 80.0%)"))
        XCTAssertEqual(decide(80, baseline: 80, ratchet).passed, true)
        XCTAssertEqual(decide(91.25, baseline: 80, ratchet), .pass("coverage 91.25% (baseline 80.0%)"))
    }

    func testRatchetWithoutABaselineKeepsOnlyTheFloor() {
        XCTAssertEqual(decide(50, baseline: nil, ratchet), .pass("coverage 50.0% (floor 50.0%)"))
        XCTAssertEqual(
            decide(49.5, baseline: nil, ratchet), .fail("coverage 49.5% is below the floor 50.0% of acme/app"))
    }

    func testTheFloorHoldsUnderABaselineBelowIt() {
        XCTAssertEqual(
            decide(45, baseline: 40, ratchet), .fail("coverage 45.0% is below the floor 50.0% of acme/app"))
    }

    func testAbsoluteIgnoresTheBaseline() {
        let absolute = RepositoryGates.Coverage(policy: .absolute, floor: 60, epsilon: 0.1)
        XCTAssertEqual(decide(61, baseline: 95, absolute), .pass("coverage 61.0% (floor 60.0%)"))
        XCTAssertEqual(
            decide(59.99, baseline: 10, absolute), .fail("coverage 59.99% is below the floor 60.0% of acme/app"))
    }

    func testTheDefaultsPassAnythingWithoutABaseline() {
        XCTAssertEqual(decide(0, baseline: nil, .init()), .pass("coverage 0.0% (floor 0.0%)"))
        XCTAssertEqual(decide(12.3456, baseline: nil, .init()), .pass("coverage 12.35% (floor 0.0%)"))
    }
}
