import Foundation
import Store

/// A webhook body read into the event it is, once: at the door (where a body that does not decode
/// is refused with the field named) and again from the stored delivery by its processing job, with
/// the same decoder and models.
public enum WebhookEvent: Sendable {
    case planeIssue(PlaneIssueEvent)
    case planeComment(PlaneCommentEvent)
    case giteaPullRequest(GiteaPullRequestEvent)
    case giteaStatus(GiteaStatusEvent)
    case giteaPush(GiteaPushEvent)
    case giteaReview(GiteaReviewEvent)
    case giteaComment(GiteaCommentEvent)
    /// An event the orchestrator does not act on: stored as ignored, with the reason.
    case unhandled(name: String, reason: String)

    /// Reads a body. `giteaEvent` is Gitea's `X-Gitea-Event` header (the stored event name when
    /// reading a stored delivery); Plane names its event in the body.
    public static func decode(
        source: WebhookSource, giteaEvent: String?, body: Data
    ) throws(InvalidWebhookBody) -> WebhookEvent {
        do {
            switch source {
            case .plane:
                return try decoder.decode(PlaneWebhookBody.self, from: body).event
            case .gitea:
                guard let giteaEvent, !giteaEvent.isEmpty else {
                    throw InvalidWebhookBody("missing X-Gitea-Event header")
                }
                switch giteaEvent {
                case "pull_request":
                    return .giteaPullRequest(try decoder.decode(GiteaPullRequestEvent.self, from: body))
                case "status": return .giteaStatus(try decoder.decode(GiteaStatusEvent.self, from: body))
                case "push": return .giteaPush(try decoder.decode(GiteaPushEvent.self, from: body))
                case "issue_comment": return .giteaComment(try decoder.decode(GiteaCommentEvent.self, from: body))
                case let name where GiteaReviewEvent.Verdict(rawValue: name) != nil:
                    var review = try decoder.decode(GiteaReviewEvent.self, from: body)
                    review.verdict = GiteaReviewEvent.Verdict(rawValue: name) ?? .comment
                    return .giteaReview(review)
                default:
                    // Not read, but it must still be a JSON object like every delivery.
                    _ = try decoder.decode(AnyObjectBody.self, from: body)
                    return .unhandled(name: giteaEvent, reason: "Gitea event '\(giteaEvent)' is not handled")
                }
            }
        } catch let error as InvalidWebhookBody {
            throw error
        } catch let error as DecodingError {
            throw InvalidWebhookBody(error)
        } catch {
            throw InvalidWebhookBody("body is not valid JSON")
        }
    }

    /// The event name stored with the delivery: Plane's `<event>.<action>`, Gitea's header.
    public var name: String {
        switch self {
        case .planeIssue(let event): "issue.\(event.action)"
        case .planeComment(let event): "issue_comment.\(event.action)"
        case .giteaPullRequest: "pull_request"
        case .giteaStatus: "status"
        case .giteaPush: "push"
        case .giteaReview(let review): review.verdict.rawValue
        case .giteaComment: "issue_comment"
        case .unhandled(let name, _): name
        }
    }

    /// Why the delivery is stored as ignored, for an event the orchestrator does not act on.
    public var ignoredReason: String? {
        guard case .unhandled(_, let reason) = self else { return nil }
        return reason
    }

    /// Shared: JSONDecoder is Sendable, and making one per body costs more than the decoding.
    private static let decoder = JSONDecoder()
}

/// Any JSON object, unread: the shape every delivery must have.
private struct AnyObjectBody: Decodable {
    private struct NoKeys: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: NoKeys.self)
    }
}
