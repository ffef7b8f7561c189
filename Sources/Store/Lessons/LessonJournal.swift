import Foundation
import Synchronization

/// The lessons journal's two settings, `ORCH_LESSONS_ENABLED` and `ORCH_LESSONS_DEDUP_WINDOW`.
///
/// One process-wide instance (`shared`), set once at startup like ``SecretRedactor``: automatic
/// lessons are written deep inside the stores' transactions (a task transition, a stage outcome)
/// that have no path to the configuration, and threading the settings through every `TaskStore`
/// would reach code other changes own. Behind a `Mutex`, so setting it at startup and reading it
/// from any task is race-free. Until it is set: enabled, with a one-hour window.
public final class LessonJournal: Sendable {
    /// The settings.
    public struct Settings: Sendable, Equatable {
        /// Off: no automatic lesson is recorded and the admin routes answer `{"enabled":false}`.
        public var enabled: Bool
        /// An automatic lesson of the same type, work item, stage and root cause as one recorded
        /// this recently is not recorded again: a task retried in a loop would otherwise bury
        /// the journal under copies of one finding.
        public var dedupWindow: Duration

        public init(enabled: Bool = true, dedupWindow: Duration = .seconds(3600)) {
            self.enabled = enabled
            self.dedupWindow = dedupWindow
        }
    }

    /// The process-wide settings.
    public static let shared = LessonJournal()

    private let state = Mutex(Settings())

    public init() {}

    /// Replaces the settings.
    public func configure(_ settings: Settings) {
        state.withLock { $0 = settings }
    }

    /// The current settings.
    public var settings: Settings { state.withLock { $0 } }
}
