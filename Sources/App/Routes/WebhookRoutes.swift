import Foundation
import Hummingbird
import Logging
import NIOCore
import Store
import Workers

/// `POST /webhook/plane` and `POST /webhook/gitea`.
///
/// Order matters: size limit, then the signature over the raw bytes, then decoding into the
/// event's model (``WebhookEvent``; a body that does not decode is a 400 naming the field). A request
/// rejected at any step writes nothing. An accepted delivery is stored with its processing job in
/// one transaction and answered 202; a repeat is answered 200 `{"ok":true,"duplicate":true}`.
struct WebhookRoutes: Sendable {
    /// Concurrent deliveries share one statement and one commit; each still gets its own answer
    /// only after its row is durable.
    let inbox: GroupCommit<WebhookStore.Delivery, WebhookStore.Outcome>
    let configuration: AppConfiguration
    let metrics = WebhookMetrics()

    init(store: WebhookStore, configuration: AppConfiguration) {
        // One flush at a time: deliveries arriving meanwhile make the next batch bigger, and on a
        // saturated machine fewer, larger commits beat two pipelined ones (bench-webhooks on two
        // cores: 0.83 of raw.insert_1row twice, against 0.76–0.82 with two).
        self.inbox = GroupCommit(maxBatch: 64, maxConcurrentFlushes: 1) { try await store.record(batch: $0) }
        self.configuration = configuration
    }

    func register(on router: Router<BasicRequestContext>) {
        router.post("/webhook/plane") { request, context in
            await handle(.plane, request: request, context: context)
        }
        router.post("/webhook/gitea") { request, context in
            await handle(.gitea, request: request, context: context)
        }
    }

    func handle(_ source: WebhookSource, request: Request, context: BasicRequestContext) async -> Response {
        let (response, outcome) = await respond(source, request: request, context: context)
        metrics.count(source, outcome)
        return response
    }

    private func respond(
        _ source: WebhookSource, request: Request, context: BasicRequestContext
    ) async -> (Response, WebhookMetrics.Outcome) {
        let limit = configuration.webhookMaxBodyBytes
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            return (json(ErrorBody("body larger than \(limit) bytes"), status: .contentTooLarge), .tooLarge)
        }
        var request = request
        let body: [UInt8]
        do {
            body = Array(buffer: try await request.collectBody(upTo: limit))
        } catch is NIOTooManyBytesError {
            return (json(ErrorBody("body larger than \(limit) bytes"), status: .contentTooLarge), .tooLarge)
        } catch {
            return (json(ErrorBody("could not read the body"), status: .badRequest), .invalid)
        }

        let signatureHeader = source == .plane ? "X-Plane-Signature" : "X-Gitea-Signature"
        if let secret = configuration.webhookSecret(for: source) {
            guard let signature = request.header(named: signatureHeader) else {
                return (json(ErrorBody("missing \(signatureHeader)"), status: .unauthorized), .unauthorized)
            }
            guard WebhookSignature.verify(signature: signature, secret: secret, body: body) else {
                context.logger.warning("webhook signature mismatch", metadata: ["webhook.source": "\(source.rawValue)"])
                return (json(ErrorBody("invalid \(signatureHeader)"), status: .unauthorized), .unauthorized)
            }
        } else if !configuration.insecureWebhooks {
            let variable = source == .plane ? "ORCH_PLANE_WEBHOOK_SECRET" : "ORCH_GITEA_WEBHOOK_SECRET"
            return (
                json(
                    ErrorBody(
                        "webhook secret not configured: set \(variable) (ORCH_INSECURE_WEBHOOKS=1 accepts unsigned deliveries, for testing only)"
                    ), status: .unauthorized), .unauthorized
            )
        }

        let event: WebhookEvent
        do {
            event = try WebhookEvent.decode(
                source: source, giteaEvent: request.header(named: "X-Gitea-Event"), body: Data(body))
        } catch {
            return (json(ErrorBody(error.description), status: .badRequest), .invalid)
        }
        guard let text = String(validating: body, as: UTF8.self) else {
            return (json(ErrorBody("body is not UTF-8"), status: .badRequest), .invalid)
        }
        let deliveryHeader = source == .plane ? "X-Plane-Delivery" : "X-Gitea-Delivery"
        let deliveryID = request.header(named: deliveryHeader).map { String($0.prefix(200)) }
        let delivery = WebhookStore.Delivery(
            source: source, deliveryID: deliveryID, bodySHA256: WebhookSignature.sha256Hex(body),
            event: event.name, payload: JSONB(text: text), ignoredReason: event.ignoredReason)
        do {
            switch try await inbox.submit(delivery) {
            case .accepted(let id, _):
                return (WebhookAnswer.stored(id: id, status: "accepted"), .accepted)
            case .ignored(let id):
                return (WebhookAnswer.stored(id: id, status: "ignored"), .ignored)
            case .duplicate:
                return (WebhookAnswer.duplicate(), .duplicate)
            }
        } catch let error as PostgresError where error.sqlState?.hasPrefix("22") == true {
            // JSON that PostgreSQL's jsonb refuses (a \u0000 escape, a lone surrogate): bad input.
            return (json(ErrorBody("body is not storable JSON: \(error.message)"), status: .badRequest), .invalid)
        } catch {
            context.logger.error(
                "could not store webhook delivery",
                metadata: ["webhook.source": "\(source.rawValue)", "db.error": "\(error)"])
            return (json(ErrorBody("database unavailable"), status: .serviceUnavailable), .unavailable)
        }
    }

}
