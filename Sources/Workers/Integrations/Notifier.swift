import Foundation
import Logging
import Store

/// Telegram bot settings (`ORCH_TELEGRAM_*`).
public struct TelegramSettings: Sendable, Equatable {
    public var apiURL: URL
    public var token: String
    public var chatID: String

    /// Creates settings.
    public init(apiURL: URL, token: String, chatID: String) {
        self.apiURL = apiURL
        self.token = token
        self.chatID = chatID
    }
}

/// Notifications as jobs: the leader turns each new task event (stage change, gate
/// failure, hold, cancellation, completion, approval) into a `notify.telegram` and a
/// `notify.plane_comment` job; each is retried on its own, so one channel failing never repeats
/// the other. Each channel's jobs wait in a queue of their own that only replicas with the
/// channel's settings claim (`workerQueues`).
public struct Notifier: Sendable {
    let telegram: TelegramSettings?
    let plane: PlaneAPISettings?

    /// Creates the notifier; a channel without settings is off.
    public init(telegram: TelegramSettings?, plane: PlaneAPISettings?) {
        self.telegram = telegram
        self.plane = plane
    }

    /// Channels that are on.
    public var channels: [String] {
        (telegram == nil ? [] : ["telegram"]) + (plane == nil ? [] : ["plane_comment"])
    }

    /// Every channel there is, on or off.
    static let allChannels = ["telegram", "plane_comment"]

    /// The queues a worker of this replica claims from: `configured` (`ORCH_QUEUES`) plus the
    /// queue of each channel that is on, and without the queue of any channel that is off (even
    /// when configured): a replica lacking a channel's settings never takes its jobs, which a
    /// replica that has them delivers.
    public func workerQueues(_ configured: [String]) -> [String] {
        let off = Set(Self.allChannels.filter { !channels.contains($0) }.map(NotificationStore.queue(channel:)))
        var queues = configured.filter { !off.contains($0) }
        for queue in channels.map(NotificationStore.queue(channel:)) where !queues.contains(queue) {
            queues.append(queue)
        }
        // Only an off channel's queue configured and nothing on: a worker needs a queue, and this
        // misconfiguration is better seen in the jobs it fails than in a replica that cannot start.
        return queues.isEmpty ? configured : queues
    }

    /// Moves notification jobs queued by an earlier version (in `default`, with every other job)
    /// into their channel's queue, so that only replicas with the channel take them.
    public static func moveQueuedJobsToChannelQueues(pool: ConnectionPool) async throws -> Int {
        let store = NotificationStore(pool: pool)
        var moved = try await store.moveQueued(
            kinds: [TelegramNotificationJob.kind, AlertJob.kind], to: TelegramNotificationJob.queue)
        moved += try await store.moveQueued(
            kinds: [PlaneCommentNotificationJob.kind], to: PlaneCommentNotificationJob.queue)
        return moved
    }

    /// Telegram's limit for one message.
    static let telegramLimit = 4096

    /// A task event as its notification jobs carry it.
    typealias Event = TaskEventNotification

    /// The leader's duty that turns new task events into jobs.
    public func duty(pool: ConnectionPool, interval: Duration) -> LeaderDuty {
        let store = NotificationStore(pool: pool)
        let channels = self.channels
        return LeaderDuty(name: "notifications", interval: interval) {
            try await store.enqueueNew(channels: channels)
        }
    }

    /// Operator alerts (orphaned agents, gone replicas, an open circuit breaker): a Telegram
    /// message each, as a job; off without Telegram.
    public func alerts(pool: ConnectionPool) -> Alerts {
        Alerts(jobs: telegram == nil ? nil : JobStore(pool: pool))
    }

    /// The channel job handlers; `pool` queues the rest of a split Telegram message that Telegram
    /// rate-limited part-way.
    public func handlers(pool: ConnectionPool) -> [JobHandler] {
        var handlers: [JobHandler] = []
        if let telegram {
            let jobs = JobStore(pool: pool)
            handlers.append(
                JobHandler(kind: AlertJob.kind, timeout: .seconds(60)) { context in
                    let messages =
                        switch try AlertJob.payload(of: context.job) {
                        case .content(let alert): Self.telegramMessages(text: alert.text, title: "⚠️ orchestrator")
                        case .remainder(let messages, _): messages
                        }
                    try await Self.sendTelegram(messages, settings: telegram, job: context.job, jobs: jobs)
                })
            handlers.append(
                JobHandler(kind: TelegramNotificationJob.kind, timeout: .seconds(60)) { context in
                    let messages =
                        switch try TelegramNotificationJob.payload(of: context.job) {
                        case .content(let event): Self.telegramMessages(text: Self.text(event), title: event.work_item)
                        case .remainder(let messages, _): messages
                        }
                    try await Self.sendTelegram(messages, settings: telegram, job: context.job, jobs: jobs)
                })
        }
        if let plane {
            handlers.append(
                JobHandler(kind: PlaneCommentNotificationJob.kind, timeout: .seconds(60)) { context in
                    try await Self.commentOnPlane(
                        try PlaneCommentNotificationJob.payload(of: context.job), settings: plane)
                })
        }
        return handlers
    }

    /// The longest alert kept (four Telegram messages); an event's text is capped at
    /// `SecretRedactor.maxTextLength`.
    static let maxAlertLength = 4 * 4096

    /// The plain-text line for an event.
    static func text(_ event: Event) -> String {
        let change =
            event.from_stage == event.to_stage
            ? "\(event.to_stage): \(event.from_status) → \(event.to_status)"
            : "\(event.from_stage) → \(event.to_stage) (\(event.to_status))"
        var text =
            "\(event.work_item) \(event.title)\n\(change) — \(event.event.replacingOccurrences(of: "_", with: " ")) by \(event.actor)"
        if let reason = event.reason, !reason.isEmpty { text += "\n\(reason)" }
        // Built here for both Telegram and Plane: no secret and no endless command output leaves.
        return SecretRedactor.shared.redact(text, limit: SecretRedactor.maxTextLength)
    }

    /// `&`, `<` and `>` escaped for Telegram's HTML parse mode.
    static func escapeHTML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Splits text into pieces whose escaped form fits one message, preferring line breaks, never
    /// cutting an escape sequence.
    static func telegramChunks(_ text: String, limit: Int = telegramLimit) -> [String] {
        var chunks: [String] = []
        var current = ""
        var currentLength = 0
        var lastBreak: String.Index?
        for character in text {
            let length = escapeHTML(String(character)).utf16.count
            if currentLength + length > limit {
                if let cut = lastBreak, cut > current.startIndex {
                    chunks.append(escapeHTML(String(current[..<cut])))
                    current = String(current[current.index(after: cut)...])
                } else {
                    chunks.append(escapeHTML(current))
                    current = ""
                }
                currentLength = escapeHTML(current).utf16.count
                lastBreak = nil
            }
            if character == "\n" { lastBreak = current.endIndex }
            current.append(character)
            currentLength += length
        }
        if !current.isEmpty { chunks.append(escapeHTML(current)) }
        return chunks
    }

    /// `text` escaped and split under the limit, with a bold `title` on the first message.
    static func telegramMessages(text: String, title: String) -> [String] {
        let title = "<b>\(escapeHTML(title))</b> "
        return telegramChunks(text, limit: telegramLimit - title.utf16.count).enumerated().map { index, chunk in
            (index == 0 ? title : "") + chunk
        }
    }

    /// Sends `messages` in order.
    ///
    /// A 429 on the first message leaves the whole job for Telegram's `retry_after`. A 429 on a
    /// later one must not make a retry repeat the parts Telegram already took: the unsent rest goes
    /// to a follow-up job due after `retry_after` (at most one per job, by its dedupe key) and this
    /// job ends. Delivery stays at-least-once, not exactly-once: if this replica dies between
    /// queueing the follow-up and completing the job, the job runs again from its first message
    /// (and its rest may go out twice), and a message whose answer was lost is sent again.
    /// Without `job` and `jobs` (no queue to hand the rest to) every 429 postpones the whole job.
    static func sendTelegram(_ messages: [String], settings: TelegramSettings, job: Job?, jobs: JobStore?) async throws
    {
        let url = settings.apiURL.appendingPathComponent("bot\(settings.token)/sendMessage")
        for (index, message) in messages.enumerated() {
            let (status, data) = try await OutboundHTTP.send(
                "POST", url,
                json: [
                    "chat_id": settings.chatID, "text": message, "parse_mode": "HTML", "disable_web_page_preview": true,
                ])
            switch status {
            case 200: continue
            case 429:
                // Telegram says how long to wait.
                let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
                let wait = ((object?["parameters"] as? [String: Any])?["retry_after"] as? NSNumber)?.doubleValue ?? 5
                guard index > 0, let job, let jobs else {
                    throw JobPostponed(
                        after: .milliseconds(Int64(wait * 1000)), reason: "Telegram rate limit: retry after \(wait) s")
                }
                let due = Date().addingTimeInterval(wait)
                let rest = Array(messages[index...])
                // The follow-up has the job's own kind (an alert's rest is still an alert).
                let followUp =
                    job.kind == AlertJob.kind
                    ? try AlertJob.job(.remainder(rest, ofJob: job.id), priority: job.priority, runAt: due)
                    : try TelegramNotificationJob.job(
                        .remainder(rest, ofJob: job.id), priority: job.priority, runAt: due)
                try await jobs.enqueue(followUp)
                return
            default:
                // The token appears in the URL only: never in the error.
                throw NotificationError(
                    description: "Telegram sendMessage answered \(status): \(OutboundHTTP.excerpt(data))",
                    isRetryable: status >= 500)
            }
        }
    }

    static func commentOnPlane(_ event: Event, settings: PlaneAPISettings) async throws {
        guard let issue = event.plane_issue_id, let project = event.plane_project_id else { return }  // not from Plane
        let html =
            "<p>\(escapeHTML(text(event)).replacingOccurrences(of: "\n", with: "<br>"))</p>\(WebhookProcessor.ownCommentMarker)"
        try await PlaneClient(settings: settings).comment(
            projectID: project, issueID: issue, html: html, externalID: "task-event-\(event.event_id)")
    }
}

/// Telegram refused a message (the bot token is never part of the description).
struct NotificationError: RetryClassifiedError, CustomStringConvertible {
    let description: String
    let isRetryable: Bool
}

/// Raises operator alerts as ``AlertJob``s (sent to Telegram); a no-op when Telegram is off.
public struct Alerts: Sendable {
    let jobs: JobStore?

    /// Alerts that go nowhere (no Telegram).
    public static let off = Alerts(jobs: nil)

    /// Queues an alert; `key` makes a repeated alert for the same thing a no-op while queued.
    public func raise(_ text: String, key: String) async {
        guard let jobs else { return }
        // Alerts may be long (Telegram splits them into parts): capped at a few parts, not one.
        let text = SecretRedactor.shared.redact(text, limit: Notifier.maxAlertLength)
        guard let job = try? AlertJob.job(.content(AlertJob.Alert(text: text, key: key))) else { return }
        _ = try? await jobs.enqueue(job)
    }
}
