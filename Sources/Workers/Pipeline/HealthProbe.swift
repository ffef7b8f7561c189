import Foundation

/// One probe of a deployed service's `health_url`: a real `GET` through `OutboundHTTP`. It fails
/// on a transport error, on no answer within `timeout` (the whole call, not only the wait for the
/// first byte), or on a status outside 2xx.
struct HealthProbe: Sendable {
    /// What one probe found.
    struct Result: Sendable, Equatable {
        var failed: Bool
        /// The HTTP status; nil when there was no answer.
        var status: Int?
        /// Why it failed, for the watch row and the degraded reason.
        var error: String?
    }

    /// A health answer is small; more is read no further (a probe is about the status).
    static let bodyLimit = 16 * 1024

    let timeout: Duration

    func probe(_ url: URL) async -> Result {
        let timeout = timeout
        do {
            let status = try await withThrowingTaskGroup(of: Int?.self) { group in
                group.addTask {
                    try await OutboundHTTP.send("GET", url, timeout: timeout, limit: Self.bodyLimit).status
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            guard let status else {
                return Result(failed: true, status: nil, error: "no answer within \(Int(timeout.seconds * 1000)) ms")
            }
            guard (200..<300).contains(status) else {
                return Result(failed: true, status: status, error: "answered HTTP \(status)")
            }
            return Result(failed: false, status: status, error: nil)
        } catch {
            return Result(failed: true, status: nil, error: "\(error)")
        }
    }
}
