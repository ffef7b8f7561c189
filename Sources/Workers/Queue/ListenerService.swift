import ServiceLifecycle
import Store

/// Runs a `Listener` as a service until graceful shutdown.
public struct ListenerService: Service {
    let listener: Listener

    /// Wraps a listener.
    public init(listener: Listener) {
        self.listener = listener
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await listener.run()
        }
    }
}
