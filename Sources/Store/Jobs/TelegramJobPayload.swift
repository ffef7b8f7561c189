/// A Telegram job's payload: what to say, or the rest of a split message that Telegram
/// rate-limited part-way, already built, queued as a follow-up job of the same kind.
///
/// On the wire the content is encoded as itself and the rest as `{"remaining_messages": […]}`,
/// so jobs queued by earlier versions read the same.
public enum TelegramJobPayload<Content: Codable & Sendable>: Codable, Sendable {
    case content(Content)
    /// The messages still to send, and the job that sent the first ones (`nil` in follow-ups
    /// queued before it was recorded).
    case remainder([String], ofJob: Int64?)

    private enum CodingKeys: String, CodingKey {
        case remainingMessages = "remaining_messages"
        case ofJob = "of_job"
    }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: CodingKeys.self),
            let messages = try container.decodeIfPresent([String].self, forKey: .remainingMessages)
        {
            self = .remainder(messages, ofJob: try container.decodeIfPresent(Int64.self, forKey: .ofJob))
        } else {
            self = .content(try Content(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .content(let content):
            try content.encode(to: encoder)
        case .remainder(let messages, let job):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(messages, forKey: .remainingMessages)
            try container.encodeIfPresent(job, forKey: .ofJob)
        }
    }

    /// The follow-up of a job that sent part of its messages: at most one per job.
    static func remainderKey(_ payload: Self) -> String? {
        guard case .remainder(_, let job?) = payload else { return nil }
        return "telegram-rest:\(job)"
    }
}
