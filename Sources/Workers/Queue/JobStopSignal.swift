import Synchronization

/// Why a running job is being stopped from outside its handler.
enum StopReason: Sendable, Equatable {
    /// An operator cancelled it (`orch_cancel`).
    case cancelRequested
    /// The replica is shutting down and the grace period ran out.
    case shutdown
    /// The handler ran past its kind's timeout.
    case timedOut
    /// The heartbeat found the job no longer this replica's (rescued, cancelled, deleted): stop
    /// the handler and write nothing — another replica may be running it.
    case leaseLost
    /// The replica was marked stopped and registers again: its jobs are abandoned (handed back
    /// when still held), nothing of theirs is applied.
    case abandoned
}

/// A one-shot signal a running job waits on alongside its handler.
final class JobStopSignal: Sendable {
    private struct State {
        var reason: StopReason?
        var waiter: CheckedContinuation<StopReason?, Never>?
    }

    private let state = Mutex(State())

    /// Fires the signal (the first reason wins).
    func fire(_ reason: StopReason) {
        let waiter = state.withLock { state -> CheckedContinuation<StopReason?, Never>? in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: reason)
    }

    /// Waits for the signal; returns `nil` if the waiting task is cancelled first.
    func wait() async -> StopReason? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> StopReason?? in
                    if let reason = state.reason { return .some(reason) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<StopReason?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
