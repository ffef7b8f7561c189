import Foundation
import Logging
import Store
import Synchronization

/// Stores what an agent prints while it runs (`agent_run_events`), in batches: the lines that
/// arrived in each tenth of a second go in one statement, never one commit per line, so any
/// replica can serve them within a fraction of a second. A JSON line (Claude Code's stream-json)
/// keeps its object and its `type` as the kind; any other line is a `line` event with its text.
struct RunEventRecorder: Sendable {
    let store: AgentRunEventStore
    let logger: Logger
    /// How long lines wait to be stored together.
    var interval: Duration = .milliseconds(100)
    /// The most events one run keeps; past it a last `truncated` event says so.
    var maxEvents = 100_000

    /// Lines handed over by the output capture (any thread) and taken by the writer.
    final class Inbox: Sendable {
        private struct State {
            var lines: [String] = []
            var finished = false
        }
        private let state = Mutex(State())

        func add(_ lines: [String]) { state.withLock { $0.lines += lines } }
        func finish() { state.withLock { $0.finished = true } }
        var isFinished: Bool { state.withLock { $0.finished } }

        /// Waits `limit`, or less once no more lines will come (so the run's end is not held up
        /// by a whole interval). Not cancellable: the last lines are stored even when the run
        /// was stopped.
        func wait(upTo limit: Duration) async {
            let clock = ContinuousClock()
            let deadline = clock.now + limit
            while !isFinished, clock.now < deadline {
                do { try await Task.sleep(for: .milliseconds(5)) } catch { return }
            }
        }

        /// What arrived since the last take, and whether no more will come.
        func take() -> (lines: [String], finished: Bool) {
            state.withLock { state in
                defer { state.lines = [] }
                return (state.lines, state.finished)
            }
        }
    }

    /// Writes what `inbox` receives as events of `runID` until it is finished and emptied.
    func record(runID: Int64, from inbox: Inbox) async {
        var next = 1
        var pending: [AgentRunEventStore.Line] = []
        var truncated = false
        while true {
            let (lines, finished) = inbox.take()
            for line in lines where !truncated {
                if next + pending.count > maxEvents {
                    pending.append(
                        .init(kind: "truncated", json: #"{"reason":"the run printed more lines than are kept"}"#))
                    truncated = true
                } else {
                    pending.append(Self.event(line))
                }
            }
            // A stopped run (STOP, shutdown): what it printed so far is stored once, outside the
            // cancelled task; the rest is in its log file.
            if Task.isCancelled {
                let (store, batch, first) = (self.store, pending, next)
                try? await Task { try await store.append(runID: runID, first: first, batch) }.value
                return
            }
            if !pending.isEmpty {
                do {
                    try await store.append(runID: runID, first: next, pending)
                    next += pending.count
                    pending = []
                } catch {
                    // Kept for the next tick (a database blip); given up only at the end.
                    logger.warning(
                        "agent output not stored yet", metadata: ["agent.run": "\(runID)", "db.error": "\(error)"])
                    if finished { return }
                }
            }
            if finished { return }
            await inbox.wait(upTo: interval)
        }
    }

    /// The event a printed line is: a JSON object keeps its `type`, anything else is text.
    static func event(_ line: String) -> AgentRunEventStore.Line {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("{"),
            let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any]
        {
            return .init(kind: (object["type"] as? String).map { String($0.prefix(64)) } ?? "json", json: trimmed)
        }
        return .init(kind: "line", json: JSONText.quoted(line))
    }
}
