import Store

/// Reads the coverage percentage out of what a `coverage_command` printed. Tools print it in
/// different ways, so three forms are accepted, in this order (the first found wins):
///
/// 1. a Cobertura report: the root `<coverage` element's `line-rate="0.875"` → 87.5 (the
///    `<package>` and `<class>` elements carry line rates of their own, which are not the total);
/// 2. a coverage.py / pytest-cov table: the last percentage on the last line starting with `TOTAL`;
/// 3. anything else: the last percentage (`87.5%`) in the output.
///
/// A figure outside 0–100 is not a coverage percentage and is skipped.
enum CoverageReport {
    /// The percentage (0–100), or nil when the output carries none.
    static func parse(_ output: String) -> Double? {
        cobertura(output) ?? total(output) ?? lastPercentage(in: Substring(output))
    }

    /// The root `<coverage …>` element's `line-rate`, as a percentage.
    private static func cobertura(_ output: String) -> Double? {
        guard let element = output.firstMatch(of: /<coverage\s[^>]*>/),
            let rate = element.output[...].firstMatch(of: /\sline-rate\s*=\s*["']([^"']*)["']/),
            let fraction = Double(rate.output.1), (0...1).contains(fraction)
        else { return nil }
        // 0.6125 × 100 is 61.25000000000001 in binary: rounded, so the figure stored as a
        // baseline is the one the report meant.
        return (fraction * 100).rounded(toPlaces: 6)
    }

    /// The last percentage on the last line that starts with `TOTAL`.
    private static func total(_ output: String) -> Double? {
        guard
            let line = output.split(whereSeparator: \.isNewline).last(where: {
                $0.drop(while: \.isWhitespace).hasPrefix("TOTAL")
            })
        else { return nil }
        return lastPercentage(in: line)
    }

    /// The last figure followed by `%` that is a percentage.
    private static func lastPercentage(in text: Substring) -> Double? {
        text.matches(of: /(\d+(?:\.\d+)?)[ \t]*%/).reversed().lazy.compactMap { match in
            Double(match.output.1).flatMap { (0...100).contains($0) ? $0 : nil }
        }.first
    }
}
