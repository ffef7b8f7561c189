/// An agent failure worth retrying later without counting against the gate: a rate limit, an
/// overloaded API, a network error. The queue retries the job with backoff.
public struct TransientAgentFailure: Error, CustomStringConvertible {
    public let description: String
}
