import Foundation

/// The agents' circuit breaker: `threshold` transient failures (any replica) within `window` open
/// it for `cooldown`, during which agent stage jobs wait instead of running.
public struct BreakerSettings: Sendable, Equatable {
    /// How the jobs it postpones start their `last_error` (`/queue` counts them by it).
    public static let postponeReason = "circuit breaker open after repeated transient agent failures"

    public var enabled: Bool
    public var threshold: Int
    public var window: Duration
    public var cooldown: Duration

    /// Creates settings; the defaults: on, 3 failures within 5 minutes, 2 minutes open.
    public init(
        enabled: Bool = true, threshold: Int = 3, window: Duration = .seconds(300), cooldown: Duration = .seconds(120)
    ) {
        self.enabled = enabled
        self.threshold = threshold
        self.window = window
        self.cooldown = cooldown
    }

    /// The breaker's name in `circuit_breakers`.
    public static let name = "agents"
}
