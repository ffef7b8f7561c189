/// The disk watchdog's rule, pure: a path's fill level alerts once when it reaches the threshold
/// and once when it is back below `threshold - hysteresis`, never in between — a disk hovering
/// around the threshold would otherwise alert on every measurement.
public enum DiskFill {
    /// What one measurement changes.
    public enum Change: String, Sendable, Equatable {
        /// It reached the threshold: alert.
        case crossed
        /// It fell clearly below the threshold again: the all-clear.
        case recovered
    }

    /// The new "above" flag and the alert to raise, if any. `wasAbove` is the stored flag (false
    /// for a path never measured).
    public static func decide(
        wasAbove: Bool, usedPercent: Double, threshold: Double, hysteresis: Double
    ) -> (above: Bool, change: Change?) {
        if !wasAbove, usedPercent >= threshold { return (true, .crossed) }
        if wasAbove, usedPercent < threshold - hysteresis { return (false, .recovered) }
        return (wasAbove, nil)
    }
}
