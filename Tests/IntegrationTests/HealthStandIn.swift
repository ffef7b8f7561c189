import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// A deployed service's `health_url` standing in for a test (`GET /health`): it answers the
/// scripted answers first, in order, then `status`, each after `delay`; a scripted 0 is a hang:
/// 200, but only after `hang` (longer than the probe's timeout).
final class HealthStandIn: Sendable {
    private struct State {
        var script: [Int] = []
        var status = 200
        var delay: Duration = .zero
        var requests = 0
    }

    private let state = Mutex(State())
    let hang: Duration

    init(hang: Duration = .seconds(2)) {
        self.hang = hang
    }

    /// Answers `status` from now on (after the scripted ones).
    func answer(_ status: Int, after delay: Duration = .zero) {
        state.withLock {
            $0.status = status
            $0.delay = delay
        }
    }

    /// Answers these first, one per request.
    func script(_ statuses: [Int]) {
        state.withLock { $0.script = statuses }
    }

    /// Requests received so far.
    var requests: Int { state.withLock { $0.requests } }

    var router: Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ -> Response in
            let (status, delay) = self.state.withLock { state -> (Int, Duration) in
                state.requests += 1
                return (state.script.isEmpty ? state.status : state.script.removeFirst(), state.delay)
            }
            try await Task.sleep(for: status == 0 ? self.hang : delay)
            return Response(
                status: HTTPResponse.Status(code: status == 0 ? 200 : status),
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"\#(status)"}"#)))
        }
        return router
    }
}
