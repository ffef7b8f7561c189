/// A Plane webhook body: `event` and `action` choose how `data` is read.
struct PlaneWebhookBody: Decodable {
    let event: WebhookEvent

    private enum CodingKeys: String, CodingKey {
        case event, action, data, activity
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let event = try container.decode(String.self, forKey: .event)
        let action = try container.decode(String.self, forKey: .action)
        switch event {
        case "issue":
            self.event = .planeIssue(
                try PlaneIssueEvent(action: action, data: .data, activity: .activity, in: container))
        case "issue_comment":
            self.event = .planeComment(
                try PlaneCommentEvent(action: action, data: .data, activity: .activity, in: container))
        default: self.event = .unhandled(name: "\(event).\(action)", reason: "Plane event '\(event)' is not handled")
        }
    }
}
