import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One outbound HTTP call over URLSession with a timeout (Plane, Telegram). A network failure
/// surfaces as `OutboundHTTP.Unreachable`; every status code is returned to the caller.
enum OutboundHTTP {
    struct Unreachable: Error, CustomStringConvertible {
        let description: String
    }

    /// One session for every call, so connections to the same server are reused; no cookies and
    /// no cache, as each call stands alone. Timeouts are per request.
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.urlCache = nil
        return URLSession(configuration: configuration)
    }()

    static func send(
        _ method: String, _ url: URL, headers: [String: String] = [:], json body: Any? = nil, timeout: Duration = .seconds(10)
    ) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: url, timeoutInterval: timeout.seconds)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        do {
            let (data, response) = try await session.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        } catch {
            throw Unreachable(description: "\(url.host ?? "server") unreachable: \(error.localizedDescription)")
        }
    }
}
