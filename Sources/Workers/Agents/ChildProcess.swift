import Foundation
import Subprocess
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Runs one child process to its end through swift-subprocess: argv (never a shell), an explicit
/// environment, a process group of its own, text on stdin, stdout and stderr into one bounded
/// `OutputCapture` (memory, or a capped log file), and every other descriptor of this process
/// closed in the child (swift-subprocess spawns with `closefrom(3)` and resets signal
/// dispositions and the mask to their defaults).
///
/// Its own process group means the whole tree a child starts can be signalled at once with
/// `kill(-pgid, …)`, and that terminal signals sent to the orchestrator do not reach it.
///
/// A wall-clock timeout sends SIGTERM to the group and SIGKILL after a grace period, and so does
/// a stall timeout (nothing written for that long); a cancelled caller kills the group at once. When the child exits, whatever it left running in its group
/// (a dev server, a watcher, a process holding stdin open) is killed too.
enum ChildProcess {
    /// Why a child could not start, or was lost track of.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// How a child ended.
    struct Termination: Sendable {
        /// The exit status, or 128 + the signal that killed it.
        let exitCode: Int32
        let timedOut: Bool
        /// Stopped because it wrote nothing for the stall timeout.
        var stalled = false
        /// Killed because the caller's task was cancelled (STOP, shutdown).
        let cancelled: Bool
    }

    /// Starts `arguments[0]` (searched in the child's `PATH` when it has no slash) in `directory`
    /// and waits for it. `onStart` runs once the process exists, before `input` is written; the
    /// prompt reaches the child on stdin only, and a child that exits without reading it is not
    /// an error here (its exit status tells). `stallTimeout`: stop the child as at its timeout once
    /// it has written nothing to `output` for that long (nil: never).
    static func run(
        arguments: [String], environment: [String: String], directory: String, output: OutputCapture, input: String?,
        timeout: Duration, stallTimeout: Duration? = nil, grace: Duration, identity: ChildIdentity? = nil,
        onStart: @escaping @Sendable (pid_t) async -> Void = { _ in }
    ) async throws -> Termination {
        guard let executable = arguments.first, !executable.isEmpty else {
            output.abandon()
            throw Failure(description: "empty command")
        }
        Self.ignoreSIGPIPE
        let (writeEnd, reader) = try await output.attach()
        // Ours to close, once: right after the spawn (the child has its own copies as stdout and
        // stderr; ours open would keep the pipe from ever reaching end of file), or when the
        // spawn failed.
        let pipeEnd = WriteEnd(writeEnd)
        let termination: Termination
        do {
            termination = try await run(
                executable: executable, arguments: arguments, environment: environment, directory: directory,
                log: writeEnd, pipeEnd: pipeEnd, input: input, timeout: timeout,
                stall: stallTimeout.map { ($0, output) }, grace: grace, identity: identity, onStart: onStart)
        } catch {
            pipeEnd.close()
            await reader.finish(within: Self.outputDrain)
            throw error
        }
        pipeEnd.close()
        await reader.finish(within: Self.outputDrain)
        return termination
    }

    /// How long the output may still flow after the child is gone (its group is killed by then;
    /// only a process that left the group can hold the pipe longer).
    static let outputDrain: Duration = .seconds(2)

    private static func run(
        executable: String, arguments: [String], environment: [String: String], directory: String, log: Int32,
        pipeEnd: WriteEnd, input: String?, timeout: Duration, stall: (Duration, OutputCapture)?, grace: Duration,
        identity: ChildIdentity?, onStart: @escaping @Sendable (pid_t) async -> Void
    ) async throws -> Termination {
        var options = PlatformOptions()
        options.processGroupID = 0
        if let identity {
            options.userID = identity.userID
            options.groupID = identity.groupID
            options.supplementaryGroups = identity.supplementaryGroups
        }
        // What swift-subprocess does when this task is cancelled mid-run: kill the whole group at
        // once (a STOP must not wait for the agent's grace period).
        options.teardownSequence = [.send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .zero)]
        let configuration = Configuration(
            executable: executable.contains("/") ? .path(FilePath(executable)) : .name(executable),
            // argv[0] as configured (a bare name stays bare, as a shell would pass it).
            arguments: Arguments(executablePathOverride: executable, remainingValues: Array(arguments.dropFirst())),
            environment: .custom(
                Dictionary(
                    uniqueKeysWithValues: environment.compactMap { key, value in
                        Environment.Key(rawValue: key).map { ($0, value) }
                    })),
            workingDirectory: FilePath(directory),
            platformOptions: options)

        let group = ProcessGroup()
        return try await withThrowingTaskGroup(of: Event.self) { tasks in
            tasks.addTask {
                let result: ExecutionResult<Void, FileDescriptorOutput, FileDescriptorOutput>
                do {
                    // The same descriptor for both, not `.combinedWithOutput`: that one duplicates
                    // the descriptor and, as we keep ownership of it, never closes the copy (one
                    // leaked descriptor per run). Given one descriptor twice, swift-subprocess
                    // makes it the child's stdout and stderr (2>&1, O_APPEND).
                    let logFile = FileDescriptor(rawValue: log)
                    result = try await Subprocess.run(
                        configuration, input: .inputWriter,
                        output: .fileDescriptor(logFile, closeAfterSpawningProcess: false),
                        error: .fileDescriptor(logFile, closeAfterSpawningProcess: false)
                    ) { execution in
                        let pid = execution.processIdentifier.value
                        pipeEnd.close()
                        group.started(pid)
                        await onStart(pid)
                        let writer = execution.standardInputWriter
                        // EPIPE (the child exited or closed stdin) and the I/O cancellation at
                        // the child's exit both end the write; neither is this run's failure.
                        if let input { _ = try? await writer.write(input) }
                        try? await writer.finish()
                    }
                } catch let error as SubprocessError {
                    // After the spawn this is a failure to watch the child (swift-subprocess could
                    // not monitor or reap it): it may still run, so its group goes now.
                    if let pid = group.pid {
                        group.signal(SIGKILL)
                        throw Failure(description: "lost track of \(executable) (pid \(pid)): \(error)")
                    }
                    throw Failure(description: "cannot start \(executable): \(error)")
                }
                switch result.terminationStatus {
                case .exited(let code): return .exited(code)
                case .signaled(let signal): return .exited(128 + signal)
                }
            }
            tasks.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .timedOut
                } catch {
                    return .cancelled
                }
            }
            if let (limit, output) = stall {
                tasks.addTask {
                    // Wakes when the silence could first reach the limit, and again after any output.
                    while true {
                        let silence = output.silence
                        if silence >= limit { return .stalled }
                        do { try await Task.sleep(for: limit - silence) } catch { return .other }
                    }
                }
            }
            var exit: Int32?
            var timedOut = false
            var stalled = false
            var cancelled = false
            while let event = try await tasks.next() {
                switch event {
                case .exited(let code):
                    exit = code
                    group.signal(SIGKILL)
                    tasks.cancelAll()
                case .timedOut where exit == nil && !stalled, .stalled where exit == nil && !timedOut,
                    .cancelled where exit == nil:
                    switch event {
                    case .timedOut: timedOut = true
                    case .stalled: stalled = true
                    default: cancelled = true
                    }
                    // SIGTERM first so the child can clean up; SIGKILL after the grace period,
                    // or at once when the caller is cancelled (the sleep then ends immediately).
                    group.signal(SIGTERM)
                    tasks.addTask {
                        try? await Task.sleep(for: grace)
                        group.signal(SIGKILL)
                        return .other
                    }
                default:
                    break
                }
            }
            // The child may have been killed by swift-subprocess's own teardown (and reported here)
            // before the cancelled timer was: it still ended because of the cancellation.
            if !timedOut, Task.isCancelled { cancelled = true }
            return Termination(exitCode: exit ?? -1, timedOut: timedOut, stalled: stalled, cancelled: cancelled)
        }
    }

    /// The parent's copy of the pipe's write end, closed exactly once from whichever path gets
    /// there first (the spawned child's body, or the caller after a failure).
    private final class WriteEnd: Sendable {
        private let descriptor: Mutex<Int32?>

        init(_ descriptor: Int32) {
            self.descriptor = Mutex(descriptor)
        }

        func close() {
            if let descriptor = descriptor.withLock({ $0.take() }) { _ = Glibc.close(descriptor) }
        }
    }

    /// Writing a child's stdin after it exited must fail with EPIPE, not kill the orchestrator.
    /// (The child itself starts with default signal dispositions.)
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    private enum Event: Sendable {
        case exited(Int32)
        case timedOut
        case stalled
        case cancelled
        case other
    }

    /// The child's process-group id once it is known. A signal asked for before that (a timeout
    /// or cancellation racing the spawn) is kept, the strongest one, and sent on `started`.
    private final class ProcessGroup: Sendable {
        private struct State {
            var id: pid_t?
            var pending: Int32?
        }

        private let state = Mutex(State())

        var pid: pid_t? { state.withLock { $0.id } }

        func started(_ pid: pid_t) {
            let pending = state.withLock { state in
                state.id = pid
                return state.pending
            }
            if let pending { _ = kill(-pid, pending) }
        }

        /// Signals every process of the group; a group that is already gone is not an error.
        func signal(_ signal: Int32) {
            let pid = state.withLock { state -> pid_t? in
                if state.id == nil, state.pending != SIGKILL { state.pending = signal }
                return state.id
            }
            if let pid { _ = kill(-pid, signal) }
        }
    }
}
