import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Makes the orchestrator non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`): a process of the same
/// non-root uid — an agent, a test or deploy command — can then neither read
/// `/proc/<orchestrator>/environ` (the database URL, tokens, webhook secrets) or its memory, nor
/// ptrace it; its `/proc/<pid>` files become root's. A root child with CAP_SYS_PTRACE still can:
/// run agents as another user (`agents.<role>.user`) when the orchestrator is root.
enum ProcessHardening {
    private static let outcome = Mutex<Int32?>(nil)

    /// Calls prctl once; safe to call again.
    static func makeNonDumpable() {
        outcome.withLock { outcome in
            guard outcome == nil else { return }
            outcome = setDumpable(false)
        }
    }

    /// Whether the process is non-dumpable now (`PR_GET_DUMPABLE` answers 0).
    static var isNonDumpable: Bool { prctl(3) == 0 }

    /// Logs what `makeNonDumpable` achieved (the logger exists only once the configuration is read).
    static func log(to logger: Logger, redactedSecrets: Int) {
        let result = outcome.withLock { $0 }
        if result == 0, isNonDumpable {
            logger.info(
                "process made non-dumpable: same-uid children cannot read its /proc environ or memory",
                metadata: ["process.dumpable": "0", "redaction.secrets": "\(redactedSecrets)"])
        } else {
            logger.warning(
                "could not make the process non-dumpable; children of the same uid can read its environment",
                metadata: ["process.prctl_result": "\(result.map(String.init) ?? "not called")"])
        }
    }

    private static func setDumpable(_ dumpable: Bool) -> Int32 { prctl(4, dumpable ? 1 : 0) }

    /// glibc's `prctl` is variadic, which Swift does not import. Called through its address as a
    /// fixed five-argument function, which is how the kernel reads it on Linux's C ABIs (the
    /// unused arguments must be zero for PR_SET_DUMPABLE and PR_GET_DUMPABLE).
    private static func prctl(_ option: Int32, _ argument: UInt = 0) -> Int32 {
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") else { return -1 }
        return unsafeBitCast(symbol, to: Prctl.self)(option, argument, 0, 0, 0)
    }
}
