import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a child's stdout and stderr go: a pipe this process drains on an event loop into a
/// `BoundedOutput`, and, for an agent, into a log file whose size is capped the same way.
///
/// A pipe rather than a file the child writes itself, so the orchestrator decides what is kept:
/// a command printing without end costs bounded memory and bounded disk. The log file gets the
/// head as it arrives (so a live run can be followed) and, at the end, the marker and the tail.
final class OutputCapture: Sendable {
    private struct State {
        var output: BoundedOutput
        var log: Int32?
        var ended = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// When the child last wrote anything (or the capture was made): the stall watch's clock.
        var lastOutput = ContinuousClock.now
        /// The unfinished last line, while lines are handed on (``onLines``).
        var partial: [UInt8] = []
    }

    /// Receives the child's output line by line as it comes (without the newline), when set:
    /// called outside the capture's lock, on the thread that drained the pipe, so it must be quick.
    private let onLines: (@Sendable ([String]) -> Void)?

    private let state: Mutex<State>

    /// Keeps the output in memory only (a command's: `CommandRunner`).
    init(headLimit: Int = BoundedOutput.commandHeadBytes, tailLimit: Int = BoundedOutput.commandTailBytes) {
        state = Mutex(State(output: BoundedOutput(headLimit: headLimit, tailLimit: tailLimit)))
        onLines = nil
    }

    /// Appends the output to the file at `logPath` (created with mode 0600), at most `maxBytes`
    /// of it plus the marker: the first `maxBytes - tailBytes` at once, the last `tailBytes`
    /// (kept in memory meanwhile) when the child's output ends.
    init(logPath: String, maxBytes: Int, tailBytes: Int, onLines: (@Sendable ([String]) -> Void)? = nil) throws {
        self.onLines = onLines
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else {
            throw ChildProcess.Failure(description: "cannot open log \(logPath): \(String(cString: strerror(errno)))")
        }
        let tail = min(max(0, tailBytes), max(0, maxBytes))
        let output = BoundedOutput(headLimit: maxBytes - tail, tailLimit: tail, storesHead: false)
        state = Mutex(State(output: output, log: log))
    }

    /// What was kept: head, the marker when bytes were dropped, tail. For a log capture the head
    /// is in the file, not here.
    var text: String { state.withLock { $0.output.text } }

    /// Bytes the child wrote in all.
    var totalBytes: Int { state.withLock { $0.output.total } }

    /// Bytes dropped between head and tail.
    var omittedBytes: Int { state.withLock { $0.output.omitted } }

    /// How long the child has written nothing (since the capture was made, before its first byte).
    var silence: Duration { ContinuousClock.now - state.withLock { $0.lastOutput } }

    fileprivate func append(_ bytes: UnsafeRawBufferPointer) {
        let lines = state.withLock { state -> [String] in
            state.lastOutput = ContinuousClock.now
            let toHead = state.output.append(bytes)
            if let log = state.log, toHead > 0 { Self.write(log, UnsafeRawBufferPointer(rebasing: bytes[..<toHead])) }
            return onLines == nil ? [] : Self.completeLines(adding: bytes, to: &state.partial)
        }
        if !lines.isEmpty { onLines?(lines) }
    }

    /// The lines `bytes` completes, after what `partial` held; the rest stays in `partial` (cut at
    /// ``maxLineBytes``, so one endless line costs bounded memory).
    private static func completeLines(adding bytes: UnsafeRawBufferPointer, to partial: inout [UInt8]) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if partial.last == UInt8(ascii: "\r") { partial.removeLast() }
                lines.append(String(decoding: partial, as: UTF8.self))
                partial.removeAll(keepingCapacity: true)
            } else if partial.count < maxLineBytes {
                partial.append(byte)
            }
        }
        return lines
    }

    /// The most of one line handed on (``onLines``); the rest of a longer line is dropped.
    static let maxLineBytes = 64 << 10

    /// The pipe reached end of file or was closed: the log gets its marker and tail, and waiters
    /// go on.
    fileprivate func end() {
        var last: String?
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.ended else { return [] }
            state.ended = true
            if !state.partial.isEmpty {
                last = String(decoding: state.partial, as: UTF8.self)
                state.partial = []
            }
            if let log = state.log {
                state.output.trailer.withUnsafeBytes { Self.write(log, $0) }
                close(log)
                state.log = nil
            }
            defer { state.waiters = [] }
            return state.waiters
        }
        if let last { onLines?([last]) }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `end()` has run.
    fileprivate func ended() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if !state.ended { state.waiters.append(continuation) }
                return state.ended
            }
            if done { continuation.resume() }
        }
    }

    /// Closes a log that was never attached to a pipe (the child could not be started).
    func abandon() { end() }

    private static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0, errno == EINTR { continue }
            // A full disk loses log bytes, never the run.
            guard written > 0 else { return }
            offset += written
        }
    }

    /// Creates the pipe the child writes to and starts draining it on an event loop. The caller
    /// hands `writeEnd` to the child and closes its own copy once the child exists.
    func attach() async throws -> (writeEnd: Int32, reader: Reader) {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            let reason = String(cString: strerror(errno))
            end()
            throw ChildProcess.Failure(description: "cannot create a pipe: \(reason)")
        }
        // Close-on-exec for other children spawned meanwhile (swift-subprocess also closes every
        // descriptor above 2 in its children, so the moment before this is harmless).
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        // A larger pipe means fewer wake-ups for a chatty child (best effort: F_SETPIPE_SZ, up
        // to /proc/sys/fs/pipe-max-size).
        _ = fcntl(descriptors[0], 1031, Int32(1 << 20))
        let capture = self
        do {
            let channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Handler(capture: capture))
                    }
                }
                .takingOwnershipOfDescriptor(input: descriptors[0])
                .get()
            return (descriptors[1], Reader(channel: channel, capture: self))
        } catch {
            close(descriptors[1])
            end()
            throw ChildProcess.Failure(description: "cannot read a child's output: \(error)")
        }
    }

    /// The draining side of the pipe.
    struct Reader: Sendable {
        let channel: any Channel
        let capture: OutputCapture

        /// Waits for the end of the output — every writer closed the pipe — for at most `limit`
        /// once the child is gone; a process that escaped the child's group and still holds the
        /// pipe does not keep the run open: the pipe is closed under it. Not cancellable, so a
        /// cancelled run still keeps what its child wrote last.
        func finish(within limit: Duration) async {
            let (channel, capture) = (self.channel, self.capture)
            await Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await capture.ended() }
                    group.addTask {
                        try? await Task.sleep(for: limit)
                        // After the end this is a no-op; before it, it ends the output here.
                        try? await channel.close()
                    }
                    await group.next()
                    group.cancelAll()
                }
                capture.end()
            }.value
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let capture: OutputCapture

        init(capture: OutputCapture) {
            self.capture = capture
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            buffer.withUnsafeReadableBytes { capture.append($0) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            capture.end()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
