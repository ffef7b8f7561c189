/// Exponential backoff with full jitter: each delay is random in [initial, min(maximum, initial·2ⁿ)].
public struct Backoff: Sendable {
    /// The smallest delay.
    public let initial: Duration
    /// The cap on any delay.
    public let maximum: Duration
    private var attempt = 0

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The next delay in the sequence.
    public mutating func next() -> Duration {
        defer { attempt += 1 }
        return Backoff.delay(attempt: attempt, initial: initial, maximum: maximum)
    }

    /// Starts the sequence again after a success.
    public mutating func reset() { attempt = 0 }

    /// The delay for a given zero-based attempt, with jitter so many replicas do not retry in lockstep.
    public static func delay(attempt: Int, initial: Duration, maximum: Duration) -> Duration {
        let base = initial.seconds
        let cap = min(maximum.seconds, base * pow2(min(attempt, 30)))
        let seconds = Double.random(in: min(base, cap)...max(base, cap))
        return .milliseconds(Int64(seconds * 1000))
    }

    private static func pow2(_ n: Int) -> Double { Double(1 << n) }
}
