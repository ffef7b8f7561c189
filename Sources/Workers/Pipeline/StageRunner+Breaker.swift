import Foundation
import Logging
import Store

/// The circuit breaker's part in an agent stage (its settings: `BreakerSettings`): agent stages
/// wait while it is open, and every transient agent failure counts toward opening it.
extension StageRunner {
    /// Postpones the job until the breaker closes, when it is open (the job spends no attempt).
    func waitWhileBreakerIsOpen() async throws {
        guard settings.breaker.enabled else { return }
        let breaker = try await breakers.state(name: BreakerSettings.name)
        if breaker.isOpen, let until = breaker.openUntil {
            throw JobPostponed(until: until, reason: "\(BreakerSettings.postponeReason): \(breaker.lastReason ?? "")")
        }
    }

    /// Counts a transient agent failure (any replica's count the same); the failure that opens
    /// the breaker raises an alert.
    func recordTransientFailure(_ reason: String, logger: Logger) async throws {
        guard settings.breaker.enabled else { return }
        let breaker = try await breakers.recordFailure(
            name: BreakerSettings.name, reason: reason, threshold: settings.breaker.threshold,
            window: settings.breaker.window, cooldown: settings.breaker.cooldown)
        if breaker.isOpen, let until = breaker.openUntil {
            logger.error("circuit breaker opened: agent jobs pause", metadata: ["breaker.until": "\(until)"])
            await alerts.raise(
                "Circuit breaker open until \(until): repeated transient agent failures; agent stages wait. Last: \(reason.prefix(300))",
                key: "breaker:\(breaker.openedCount)")
        }
    }

    /// A rate limit, an overloaded API or a network error, from the agent's result.
    static func transientReason(_ outcome: AgentLauncher.Outcome) -> String? {
        guard !outcome.timedOut, !outcome.succeeded, let usage = outcome.usage, usage.isError == true else {
            return nil
        }
        let text = (usage.resultText ?? "").lowercased()
        let markers = [
            "rate limit", "rate_limit", "overloaded", " 429", " 529", "econnreset", "etimedout", "network error",
            "connection error",
        ]
        guard let marker = markers.first(where: { text.contains($0) }) else { return nil }
        return
            "transient agent failure (\(marker.trimmingCharacters(in: .whitespaces))) in run \(outcome.runID): \(text.prefix(200))"
    }
}
