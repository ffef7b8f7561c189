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

/// Notifications as jobs (DESIGN §8): the leader turns each new task event (stage change, gate
/// failure, hold, cancellation, completion, approval) into a `notify.telegram` and a
/// `notify.plane_comment` job; each is retried on its own, so one channel failing never repeats
/// the other.
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

    /// Telegram's limit for one message.
    static let telegramLimit = 4096

    struct Event: Decodable {
        let event_id: Int64
        let event: String
        let work_item: String
        let title: String
        let from_stage: String
        let to_stage: String
        let from_status: String
        let to_status: String
        let reason: String?
        let actor: String
        let plane_issue_id: String?
        let plane_project_id: String?
    }

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

    /// The channel job handlers.
    public var handlers: [JobHandler] {
        var handlers: [JobHandler] = []
        if let telegram {
            handlers.append(JobHandler(kind: Alerts.jobKind, timeout: .seconds(60)) { context in
                struct Payload: Decodable { let text: String }
                try await Self.sendTelegram(text: try context.job.payload.decode(Payload.self).text, title: "⚠️ orchestrator", settings: telegram)
            })
            handlers.append(JobHandler(kind: NotificationStore.jobKind(channel: "telegram"), timeout: .seconds(60)) { context in
                try await Self.sendTelegram(try context.job.payload.decode(Event.self), settings: telegram)
            })
        }
        if let plane {
            handlers.append(JobHandler(kind: NotificationStore.jobKind(channel: "plane_comment"), timeout: .seconds(60)) { context in
                try await Self.commentOnPlane(try context.job.payload.decode(Event.self), settings: plane)
            })
        }
        return handlers
    }

    /// The plain-text line for an event.
    static func text(_ event: Event) -> String {
        let change = event.from_stage == event.to_stage
            ? "\(event.to_stage): \(event.from_status) → \(event.to_status)"
            : "\(event.from_stage) → \(event.to_stage) (\(event.to_status))"
        var text = "\(event.work_item) \(event.title)\n\(change) — \(event.event.replacingOccurrences(of: "_", with: " ")) by \(event.actor)"
        if let reason = event.reason, !reason.isEmpty { text += "\n\(reason)" }
        // Built here for both Telegram and Plane: no secret and no endless command output leaves.
        return SecretRedactor.shared.redact(text, limit: SecretRedactor.maxTextLength)
    }

    /// `&`, `<` and `>` escaped for Telegram's HTML parse mode.
    static func escapeHTML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
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

    static func sendTelegram(_ event: Event, settings: TelegramSettings) async throws {
        try await sendTelegram(text: text(event), title: event.work_item, settings: settings)
    }

    /// Sends `text` (escaped, split under the limit) with a bold `title` on the first message.
    static func sendTelegram(text: String, title: String, settings: TelegramSettings) async throws {
        let url = settings.apiURL.appendingPathComponent("bot\(settings.token)/sendMessage")
        let title = "<b>\(escapeHTML(title))</b> "
        for (index, chunk) in telegramChunks(text, limit: telegramLimit - title.utf16.count).enumerated() {
            let (status, data) = try await OutboundHTTP.send("POST", url, json: [
                "chat_id": settings.chatID, "text": (index == 0 ? title : "") + chunk, "parse_mode": "HTML", "disable_web_page_preview": true,
            ])
            switch status {
            case 200: continue
            case 429:
                // Telegram says how long to wait: the job goes back to the queue for that long.
                let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
                let wait = ((object?["parameters"] as? [String: Any])?["retry_after"] as? NSNumber)?.doubleValue ?? 5
                throw JobPostponed(until: Date().addingTimeInterval(wait), reason: "Telegram rate limit: retry after \(wait) s")
            default:
                // The token appears in the URL only: never in the error.
                throw NotificationError(description: "Telegram sendMessage answered \(status): \(String(decoding: data.prefix(300), as: UTF8.self))", isRetryable: status >= 500)
            }
        }
    }

    static func commentOnPlane(_ event: Event, settings: PlaneAPISettings) async throws {
        guard let issue = event.plane_issue_id, let project = event.plane_project_id else { return }  // not from Plane
        let html = "<p>\(escapeHTML(text(event)).replacingOccurrences(of: "\n", with: "<br>"))</p>\(WebhookProcessor.ownCommentMarker)"
        try await PlaneClient(settings: settings).comment(projectID: project, issueID: issue, html: html, externalID: "task-event-\(event.event_id)")
    }
}

/// Telegram refused a message (the bot token is never part of the description).
struct NotificationError: RetryClassifiedError, CustomStringConvertible {
    let description: String
    let isRetryable: Bool
}

/// Raises operator alerts as `notify.alert` jobs (sent to Telegram); a no-op when Telegram is off.
public struct Alerts: Sendable {
    static let jobKind = "notify.alert"
    let jobs: JobStore?

    /// Alerts that go nowhere (no Telegram).
    public static let off = Alerts(jobs: nil)

    /// Queues an alert; `key` makes a repeated alert for the same thing a no-op while queued.
    public func raise(_ text: String, key: String) async {
        guard let jobs else { return }
        let text = SecretRedactor.shared.redact(text, limit: SecretRedactor.maxTextLength)
        _ = try? await jobs.enqueue(NewJob(
            kind: Self.jobKind, payload: (try? JSONB(encoding: ["text": text])) ?? JSONB(text: "{}"),
            maxAttempts: 10, dedupeKey: "alert:\(key)"))
    }
}
