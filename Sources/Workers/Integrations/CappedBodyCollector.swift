import Foundation
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The response of one `OutboundHTTP` call as it arrives: the status and at most `limit` body
/// bytes; past the limit it asks for the transfer to be cancelled. Resumes the caller once.
final class CappedBodyCollector: Sendable {
    private struct State {
        var continuation: CheckedContinuation<(status: Int, body: Data), any Error>?
        /// The outcome when the transfer ended before `start` (a cancellation reported first).
        var finished: Result<(status: Int, body: Data), any Error>?
        var status = 0
        var body = Data()
        var cut = false
    }

    private let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Sets who is resumed when the transfer ends; resumes it at once if it already ended (the
    /// caller was cancelled and Foundation reported the end before this was called).
    func start(_ continuation: CheckedContinuation<(status: Int, body: Data), any Error>) {
        let finished = state.withLock { state -> Result<(status: Int, body: Data), any Error>? in
            guard let finished = state.finished else {
                state.continuation = continuation
                return nil
            }
            return finished
        }
        if let finished { continuation.resume(with: finished) }
    }

    func received(status: Int) {
        state.withLock { $0.status = status }
    }

    /// Keeps what fits; true when the body just went past the limit (cancel the transfer).
    func received(_ data: Data) -> Bool {
        state.withLock { state -> Bool in
            guard !state.cut else { return false }
            let room = limit - state.body.count
            if data.count <= room {
                state.body.append(data)
                return false
            }
            state.body.append(data.prefix(max(room, 0)))
            state.cut = true
            return true
        }
    }

    func completed(status: Int?, error: (any Error)?) {
        let (continuation, result) = state.withLock { state in
            defer { state.continuation = nil }
            if state.status == 0, let status { state.status = status }
            // The cancel after a cut is ours: the answer is what was kept.
            let result: Result<(status: Int, body: Data), any Error>
            if let error, !state.cut {
                result = .failure(error)
            } else {
                result = .success((state.status, state.body))
            }
            if state.continuation == nil { state.finished = result }
            return (state.continuation, result)
        }
        continuation?.resume(with: result)
    }
}

/// The delegate of the shared outbound session: hands each task's events to its collector. A
/// session delegate (not a per-task one, which older corelibs Foundation ignores) also makes
/// URLSession pass the body on piece by piece instead of accumulating it.
final class OutboundSessionDelegate: NSObject, URLSessionDataDelegate, Sendable {
    private let collectors = Mutex<[Int: CappedBodyCollector]>([:])

    /// Routes `task`'s events to `collector` until it completes.
    func register(_ collector: CappedBodyCollector, for task: URLSessionTask) {
        collectors.withLock { $0[task.taskIdentifier] = collector }
    }

    private func collector(_ task: URLSessionTask) -> CappedBodyCollector? {
        collectors.withLock { $0[task.taskIdentifier] }
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @Sendable @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        collector(dataTask)?.received(status: (response as? HTTPURLResponse)?.statusCode ?? 0)
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        // Past the cap nothing more is wanted: drop the connection rather than drain it.
        if collector(dataTask)?.received(data) == true { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let collector = collectors.withLock { $0.removeValue(forKey: task.taskIdentifier) }
        collector?.completed(status: (task.response as? HTTPURLResponse)?.statusCode, error: error)
    }
}
