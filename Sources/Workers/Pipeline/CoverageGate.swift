/// The coverage gate's decision, pure so every policy's edge is unit-tested without a database or
/// a command: given what `coverage_command` measured, the repository's baseline (if any) and its
/// `coverage:` settings, pass or fail with a message that carries both numbers.
///
/// - `ratchet`: passes at ≥ baseline − epsilon and ≥ floor; with no baseline yet, the floor only.
///   The baseline itself rises only when a task merges (`CoverageStore.raiseBaseline`), never
///   here: a development pass that is never merged must not raise the bar for everyone else.
/// - `absolute`: the floor only; a baseline is shown but not enforced.
enum CoverageGate {
    /// What the gate decided; the message is the pass's reason or the failure's feedback.
    enum Verdict: Sendable, Equatable {
        case pass(String)
        case fail(String)

        /// Whether the measurement is recorded as passing (the merge raises the baseline from those).
        var passed: Bool {
            if case .pass = self { return true }
            return false
        }
    }

    /// Binary fractions make `80.0 - 0.1` differ from `79.9` in the last bits: a measurement
    /// within this of the bound is on it.
    static let tolerance = 1e-9

    static func decide(
        measured: Double, baseline: Double?, settings: RepositoryGates.Coverage, repo: String
    ) -> Verdict {
        let shown = "coverage \(percent(measured))"
        if settings.policy == .ratchet, let baseline, measured < baseline - settings.epsilon - tolerance {
            return .fail(
                "\(shown) is below the baseline \(percent(baseline)) (epsilon \(number(settings.epsilon))) of \(repo)")
        }
        if measured < settings.floor - tolerance {
            return .fail("\(shown) is below the floor \(percent(settings.floor)) of \(repo)")
        }
        switch (settings.policy, baseline) {
        case (.ratchet, let baseline?): return .pass("\(shown) (baseline \(percent(baseline)))")
        default: return .pass("\(shown) (floor \(percent(settings.floor)))")
        }
    }

    /// `72.4%`, `80.0%`, `87.25%`: two decimals at most, so float noise never reaches a message.
    static func percent(_ value: Double) -> String { "\(number(value))%" }

    private static func number(_ value: Double) -> String { "\((value * 100).rounded() / 100)" }
}
