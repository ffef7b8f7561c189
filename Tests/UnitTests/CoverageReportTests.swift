import XCTest

@testable import Workers

/// What a `coverage_command` may print, and the percentage read from it: the three forms in
/// their order of precedence, and output that carries no percentage.
final class CoverageReportTests: XCTestCase {
    func testCoberturaRootLineRateWinsOverPackagesAndPercentages() {
        let xml = """
            <?xml version="1.0" ?>
            <!-- 12% of nothing -->
            <coverage version="7.4" timestamp="1700000000" lines-valid="80" branch-rate="0.5" line-rate="0.875">
              <packages>
                <package name="app" line-rate="0.25" branch-rate="0">
                  <classes><class name="a.py" filename="a.py" line-rate="0.1"/></classes>
                </package>
              </packages>
            </coverage>
            TOTAL   80   10   99%
            """
        XCTAssertEqual(CoverageReport.parse(xml), 87.5)
        XCTAssertEqual(CoverageReport.parse("<coverage line-rate='1' branch-rate='0'>"), 100)
        XCTAssertEqual(CoverageReport.parse("<coverage line-rate=\"0.6125\">"), 61.25, "without binary noise")
        // A line rate that is no fraction is not read as one; the percentage after it is.
        XCTAssertEqual(CoverageReport.parse("<coverage line-rate=\"1.5\">\nlines: 42%"), 42)
    }

    func testTheLastPercentageOfTheLastTotalLine() {
        let table = """
            Name              Stmts   Miss  Cover
            -------------------------------------
            app/__init__.py       2      0   100%
            app/core.py          98     18    82%
            -------------------------------------
            TOTAL               100     18    82%
            Required test coverage of 50% reached. Total coverage: 82.00%
            """
        XCTAssertEqual(CoverageReport.parse(table), 82)
        // Branch coverage adds columns; the last one is the total.
        XCTAssertEqual(CoverageReport.parse("TOTAL 100 20 10 2 80% \nTOTAL    120   20   40   5   79.5%\n1%"), 79.5)
        XCTAssertEqual(CoverageReport.parse("  TOTAL 100 20 80%"), 80, "indented")
    }

    func testOtherwiseTheLastPercentageInTheOutput() {
        XCTAssertEqual(CoverageReport.parse("lines......: 87.5% (350 of 400 lines)\nfunctions..: 90.1%\n"), 90.1)
        XCTAssertEqual(CoverageReport.parse("coverage: 66 %"), 66)
        // A TOTAL line without a percentage falls through to the last percentage anywhere.
        XCTAssertEqual(CoverageReport.parse("covered 73.25%\nTOTAL lines 400"), 73.25)
        XCTAssertEqual(CoverageReport.parse("0%"), 0)
    }

    func testOutputWithoutAPercentageGivesNothing() {
        XCTAssertNil(CoverageReport.parse(""))
        XCTAssertNil(CoverageReport.parse("tests passed\nno coverage data collected"))
        XCTAssertNil(CoverageReport.parse("<coverage version=\"1\">"), "a Cobertura root without line-rate")
        XCTAssertNil(CoverageReport.parse("150% done"), "not a percentage of lines")
        XCTAssertNil(CoverageReport.parse("100 percent sure; %d lines; .%"))
        XCTAssertEqual(CoverageReport.parse("12.5% then 250%"), 12.5, "an impossible figure is skipped")
    }
}
