/// Who did what a webhook reports (a Plane user, a Gitea user), as `allowed_actors` judges them.
public protocol WebhookActor: Sendable {
    /// Whether an entry of `allowed` names this user.
    func isNamed(in allowed: [String]) -> Bool
    /// How the user is named in an `ignored` reason.
    var label: String { get }
}

extension PlaneActor: WebhookActor {}
extension GiteaUser: WebhookActor {}
