import CProcess
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process in its own process group, started with `posix_spawn`: argv (never a shell), an
/// explicit environment, stdin from a pipe, stdout and stderr appended to one log file, every
/// other descriptor of this process closed in the child.
///
/// Its own process group means the whole tree an agent starts can be signalled at once with
/// `kill(-pgid, …)`, and that terminal signals sent to the orchestrator do not reach it.
struct ChildProcess: Sendable {
    /// The child's pid, also its process-group id.
    let pid: pid_t

    /// Why a spawn failed.
    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    /// Spawns `arguments[0]` (searched in `PATH` when it has no slash) in `directory`.
    /// Returns the process and the write end of its stdin pipe (the caller writes and closes it).
    static func spawn(
        arguments: [String], environment: [String: String], directory: String, logPath: String
    ) throws -> (ChildProcess, stdin: Int32) {
        guard let executable = arguments.first, !executable.isEmpty else { throw SpawnError(description: "empty command") }
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw SpawnError(description: "cannot open log \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(log) }
        var pipeEnds: [Int32] = [0, 0]
        guard orch_pipe_cloexec(&pipeEnds) == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
        defer { close(pipeEnds[0]) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[0], 0)
        posix_spawn_file_actions_adddup2(&actions, log, 1)
        posix_spawn_file_actions_adddup2(&actions, log, 2)
        // Database sockets, listening sockets, other agents' pipes: none of them is the agent's.
        orch_spawn_addclosefrom(&actions, 3)
        orch_spawn_addchdir(&actions, directory)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // posix_spawnp searches the PATH of *this* process; an explicit PATH in the child's
        // environment only matters for what the agent itself starts.
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            close(pipeEnds[1])
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return (ChildProcess(pid: pid), pipeEnds[1])
    }

    /// Writes `text` to the descriptor and closes it. A child that exits without reading its input
    /// is not an error here (EPIPE), the exit status tells.
    static func writeAndClose(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                // MSG-less write: SIGPIPE is ignored process-wide by the launcher (see AgentLauncher).
                write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                break
            }
            offset += written
        }
        bytes.removeAll()
        close(descriptor)
    }

    /// Signals the whole process group; ignores a group that is already gone.
    func signalGroup(_ signal: Int32) {
        _ = kill(-pid, signal)
    }

    /// Whether any process of the group is still alive.
    var groupAlive: Bool {
        kill(-pid, 0) == 0 || errno == EPERM
    }

    /// Blocks until the child exits; returns its exit code, or 128 + the signal that killed it.
    func waitBlocking() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (the C macros are not imported).
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}
