import Foundation
import Logging
import Synchronization

/// Delivers LISTEN/NOTIFY notifications from one dedicated connection to any number of subscribers.
///
/// `run()` keeps the connection up: on loss it reconnects with exponential backoff, LISTENs again
/// and emits `.reconnected`, because notifications sent while disconnected are gone for good and
/// consumers must rescan. Notifications are hints; every consumer must also poll.
public final class Listener: Sendable {
    /// What subscribers receive.
    public enum Event: Sendable, Equatable {
        /// A notification on one of the channels.
        case notification(channel: NotificationChannel, payload: String)
        /// The connection (re)opened and LISTENs are in place; anything sent meanwhile was missed.
        case reconnected
    }

    private let pool: ConnectionPool
    private let channels: [NotificationChannel]
    private let logger: Logger
    private let subscribers: Mutex<[UInt64: AsyncStream<Event>.Continuation]> = Mutex([:])
    private let nextSubscriber = Atomic<UInt64>(0)
    private let connectedBackend = Atomic<Int32>(0)
    /// How long one blocking wait on the socket lasts; bounds how quickly `run()` notices cancellation.
    private let pollSlice: Int32 = 250

    /// Creates a listener on the given channels; nothing connects until `run()`.
    public init(pool: ConnectionPool, channels: [NotificationChannel] = NotificationChannel.allCases, logger: Logger) {
        self.pool = pool
        self.channels = channels
        self.logger = logger
    }

    /// A new subscription. The stream ends when `run()` returns or the consumer stops iterating.
    public func events() -> AsyncStream<Event> {
        let id = nextSubscriber.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    /// The server pid of the listening session while connected (0 otherwise); for diagnostics and tests.
    public var backendPID: Int32 { connectedBackend.load(ordering: .relaxed) }

    /// Keeps listening until the task is cancelled.
    public func run() async {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        while !Task.isCancelled {
            do {
                try await listenUntilFailure {
                    backoff.reset()
                }
            } catch is CancellationError {
                break
            } catch {
                connectedBackend.store(0, ordering: .relaxed)
                let delay = backoff.next()
                logger.warning(
                    "listener connection lost; reconnecting",
                    metadata: ["db.error": "\(error)", "retry.delay": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
        connectedBackend.store(0, ordering: .relaxed)
        // Finish outside the lock: `finish()` runs `onTermination`, which takes the lock itself.
        let finished = subscribers.withLock { subscribers in
            defer { subscribers.removeAll() }
            return Array(subscribers.values)
        }
        finished.forEach { $0.finish() }
    }

    private func listenUntilFailure(onConnected: () -> Void) async throws {
        let connection = try await pool.openDedicated()
        defer { connection.close() }
        let channels = self.channels
        try await pool.run {
            for channel in channels {
                _ = try connection.exec("LISTEN \(channel.quotedIdentifier)", [])
            }
        }
        connectedBackend.store(connection.backendPID, ordering: .relaxed)
        onConnected()
        logger.debug(
            "listening",
            metadata: ["db.channels": "\(channels.map(\.rawValue))", "db.backend_pid": "\(connection.backendPID)"])
        broadcast(.reconnected)
        let slice = pollSlice
        while !Task.isCancelled {
            let notes = try await pool.run { try connection.waitForNotifications(timeoutMilliseconds: slice) }
            for note in notes {
                guard let channel = NotificationChannel(rawValue: note.channel) else { continue }
                broadcast(.notification(channel: channel, payload: note.payload))
            }
        }
        throw CancellationError()
    }

    private func broadcast(_ event: Event) {
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets { continuation.yield(event) }
    }
}
