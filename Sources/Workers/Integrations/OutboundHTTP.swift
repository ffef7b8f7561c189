import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One outbound HTTP call over URLSession with a timeout (Plane, Gitea, Telegram). A network
/// failure surfaces as `OutboundHTTP.Unreachable`; every status code is returned to the caller.
/// At most `maximumResponseBytes` of a response body are kept.
enum OutboundHTTP {
    struct Unreachable: Error, CustomStringConvertible {
        let description: String
    }

    /// The most of a response body kept in memory (1 MiB). The APIs called answer a few KiB; a
    /// larger body (a hostile or broken server) is cut here and its connection dropped, so it
    /// cannot exhaust memory. A cut JSON body no longer parses: the caller reports a failed call.
    static let maximumResponseBytes = 1 << 20

    /// How much of a body an error message quotes.
    static let excerptLength = 300

    /// One session for every call, so connections to the same server are reused; no cookies and
    /// no cache, as each call stands alone. Timeouts are per request.
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.urlCache = nil
        return URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
    }()

    /// Routes each task's response to the collector of its call.
    private static let delegate = OutboundSessionDelegate()

    /// Sends one request; the body is JSON-encoded `json`, the answer's body capped at `limit` bytes.
    static func send(
        _ method: String, _ url: URL, headers: [String: String] = [:], json body: Any? = nil,
        timeout: Duration = .seconds(10), limit: Int = maximumResponseBytes
    ) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: url, timeoutInterval: timeout.seconds)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        // The session's delegate receives the body piece by piece (URLSession keeps none of it),
        // so the cap holds however much the server sends.
        let task = session.dataTask(with: request)
        let collector = CappedBodyCollector(limit: limit)
        delegate.register(collector, for: task)
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    collector.start(continuation)
                    task.resume()
                }
            } onCancel: {
                task.cancel()
            }
        } catch {
            throw Unreachable(description: "\(url.host ?? "server") unreachable: \(error.localizedDescription)")
        }
    }

    /// At most `excerptLength` characters of a body, for an error message.
    static func excerpt(_ body: Data) -> String {
        String(decoding: body.prefix(excerptLength), as: UTF8.self)
    }
}
