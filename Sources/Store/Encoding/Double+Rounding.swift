extension Double {
    /// The value rounded to `places` decimals (0–6), for JSON figures: seconds to the millisecond,
    /// USD to the micro-dollar, instead of binary-float noise in every answer.
    public func rounded(toPlaces places: Int) -> Double {
        let scale = [1.0, 10.0, 100.0, 1000.0, 10_000.0, 100_000.0, 1_000_000.0][places]
        return (self * scale).rounded() / scale
    }
}
