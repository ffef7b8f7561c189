/// Which service sent a webhook delivery: it chooses the signature header, the secret and the
/// event models its body is read with.
public enum WebhookSource: String, Sendable, Codable, PostgresTextEnum {
    case plane, gitea
}
