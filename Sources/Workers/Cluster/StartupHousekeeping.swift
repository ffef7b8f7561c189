import Logging

/// The housekeeping a replica does once per process start, before it serves or claims anything
/// (as the seed service did at start): lease reclaim, orphan recovery, log rotation, worktree
/// prune, ownership check. Each step logs exactly one line, `startup housekeeping: <step>`, with
/// what it did as metadata — so an operator reading a replica's start sees every step, done or
/// skipped, once.
public enum StartupHousekeeping {
    /// One step of the housekeeping.
    public struct Step: Sendable {
        /// How the step is named in its log line.
        public let name: String
        /// A failure of a required step stops the start (like any database error at start); one
        /// of an optional step is logged and the start goes on.
        public let required: Bool
        /// The step logs its own `startup housekeeping: <step>…` line (at the level what it found
        /// deserves, e.g. a warning), so `run` logs it only when it fails.
        let logsItself: Bool
        let body: @Sendable () async throws -> Logger.Metadata

        /// A step whose `body` does the work and answers with what it did (counts, as metadata).
        public init(
            _ name: String, required: Bool = false, logsItself: Bool = false,
            _ body: @escaping @Sendable () async throws -> Logger.Metadata
        ) {
            self.name = name
            self.required = required
            self.logsItself = logsItself
            self.body = body
        }

        /// A step that is not run here (switched off, or not built), logged with the reason.
        public static func skipped(_ name: String, reason: String) -> Step {
            Step(name) { ["housekeeping.skipped": "\(reason)"] }
        }
    }

    /// Runs `steps` in order, logging one line per step. Rethrows the error of a required step
    /// (after its line); returns what each step answered, by name.
    @discardableResult
    public static func run(_ steps: [Step], logger: Logger) async throws -> [String: Logger.Metadata] {
        var results: [String: Logger.Metadata] = [:]
        for step in steps {
            let message: Logger.Message = "startup housekeeping: \(step.name)"
            do {
                let metadata = try await step.body()
                results[step.name] = metadata
                if !step.logsItself { logger.info(message, metadata: metadata) }
            } catch {
                logger.error(
                    message,
                    metadata: ["housekeeping.failed": "\(error)", "housekeeping.required": "\(step.required)"])
                if step.required { throw error }
            }
        }
        return results
    }
}
