import Foundation
import Hummingbird
import Logging
import NIOCore
import TestSupport

/// A small local HTTP server standing in for an outside API (Plane, Gitea, …) during a test.
///
/// `with` runs it on a free port for the duration of `body` only: the server lives in a child task
/// of a task group and is cancelled when the body returns or throws.
enum StandInServer {
    static func with<T: Sendable>(
        _ router: Router<BasicRequestContext>, _ body: (URL) async throws -> T
    ) async throws -> T {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "stand-in")
        logger.logLevel = .error
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw TestSetupError("stand-in server did not start") }
            let result = try await body(URL(string: "http://127.0.0.1:\(port)")!)
            group.cancelAll()
            return result
        }
    }
}
