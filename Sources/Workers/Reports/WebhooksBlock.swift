import Store

/// The `webhooks` block: deliveries by `source.status`, which secrets are set, insecure mode and
/// the body limit.
public struct WebhooksBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let deliveries: [String: Int]
        public let planeSecretSet: Bool
        public let giteaSecretSet: Bool
        public let insecure: Bool
        public let maxBodyBytes: Int
    }

    public let key = "webhooks"
    let planeSecretSet: Bool
    let giteaSecretSet: Bool
    let insecure: Bool
    let maxBodyBytes: Int

    /// Creates the block for the webhook settings (whether each secret is set, never the secret).
    public init(planeSecretSet: Bool, giteaSecretSet: Bool, insecure: Bool, maxBodyBytes: Int) {
        self.planeSecretSet = planeSecretSet
        self.giteaSecretSet = giteaSecretSet
        self.insecure = insecure
        self.maxBodyBytes = maxBodyBytes
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        Body(
            deliveries: try await WebhookStore(pool: pool).counts(), planeSecretSet: planeSecretSet,
            giteaSecretSet: giteaSecretSet,
            insecure: insecure, maxBodyBytes: maxBodyBytes)
    }
}
