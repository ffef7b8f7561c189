import Synchronization

/// In-process async mutual exclusion per key (one git repository at a time on this replica:
/// git's own lock files make concurrent fetches and worktree changes fail rather than wait).
final class KeyedLocks: Sendable {
    /// A key present is held; its array holds the waiters, first come first served.
    private let state = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func withLock<T: Sendable>(_ key: String, _ body: () async throws -> T) async throws -> T {
        await withCheckedContinuation { continuation in
            let acquired = state.withLock { held -> Bool in
                if held[key] == nil {
                    held[key] = []
                    return true
                }
                held[key]!.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
        defer {
            let next = state.withLock { held -> CheckedContinuation<Void, Never>? in
                guard var waiters = held[key], !waiters.isEmpty else {
                    held[key] = nil
                    return nil
                }
                let next = waiters.removeFirst()
                held[key] = waiters
                return next
            }
            next?.resume()
        }
        return try await body()
    }
}
