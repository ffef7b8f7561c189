import Store
import XCTest

/// The disk watchdog's hysteresis: one alert on the way up, one all-clear on the way down.
final class DiskFillTests: XCTestCase {
    func testOneAlertUpAndOneDownWithNothingInBetween() {
        var above = false
        var changes: [DiskFill.Change] = []
        for used in [50.0, 89.9, 90, 95, 88, 89.9, 86, 85.1, 84.9, 80, 91] {
            let decision = DiskFill.decide(wasAbove: above, usedPercent: used, threshold: 90, hysteresis: 5)
            above = decision.above
            if let change = decision.change { changes.append(change) }
        }
        XCTAssertEqual(changes, [.crossed, .recovered, .crossed])
    }
}
