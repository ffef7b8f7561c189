import Foundation
import Store

/// The `resilience` block: the agents' circuit breaker — its kill switch, state, failures in the
/// window, settings, times opened, last reason, and the jobs it postponed.
public struct ResilienceBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let settings: BreakerSettings
        public let state: CircuitBreakerStore.State
        public let postponedJobs: Int

        /// Creates the block's figures.
        public init(settings: BreakerSettings, state: CircuitBreakerStore.State, postponedJobs: Int) {
            self.settings = settings
            self.state = state
            self.postponedJobs = postponedJobs
        }

        enum CodingKeys: String, CodingKey {
            case enabled, scope, breaker, state, openUntil, failuresInWindow, threshold, windowSeconds, cooldownSeconds
            case openedCount, lastReason, postponedJobs
        }

        /// `open_until` only while open: a past deadline would read as if it still held.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(settings.enabled, forKey: .enabled)
            try container.encode(QueueReportScope.all, forKey: .scope)
            try container.encode(BreakerSettings.name, forKey: .breaker)
            try container.encode(state.isOpen ? "open" : "closed", forKey: .state)
            try container.encodeIfPresent(state.isOpen ? state.openUntil : nil, forKey: .openUntil)
            try container.encode(state.failures, forKey: .failuresInWindow)
            try container.encode(settings.threshold, forKey: .threshold)
            try container.encode(settings.window.seconds, forKey: .windowSeconds)
            try container.encode(settings.cooldown.seconds, forKey: .cooldownSeconds)
            try container.encode(state.openedCount, forKey: .openedCount)
            try container.encodeIfPresent(state.lastReason, forKey: .lastReason)
            try container.encode(postponedJobs, forKey: .postponedJobs)
        }
    }

    public let key = "resilience"
    let settings: BreakerSettings

    /// Creates the block for the breaker's settings.
    public init(settings: BreakerSettings) {
        self.settings = settings
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let state = try await CircuitBreakerStore(pool: pool).state(name: BreakerSettings.name)
        let postponed = try await JobStore(pool: pool).countPostponed(
            kind: TaskStore.stageJobKind, reasonPrefix: BreakerSettings.postponeReason)
        return Body(settings: settings, state: state, postponedJobs: postponed)
    }
}
