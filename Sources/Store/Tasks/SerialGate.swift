/// The serial gate's rule, with no I/O: per repository at most `max_active_tasks` tasks past
/// their first stage, and none at all while the repository is frozen. The first stage (analysis)
/// runs freely — it only writes the specification — and a task that would move past it with no
/// slot free waits (`waiting`) until one frees; the transition that frees a slot opens the gate
/// for the longest-waiting task in the same transaction, so nothing polls for it.
public enum SerialGate {
    /// Whether the gate lets a task take a slot now.
    public enum Verdict: Sendable, Equatable {
        case open
        /// With what an operator reads in the task's history.
        case closed(reason: String)
    }

    /// Whether a task in `state` holds one of its repository's slots: past its track's first
    /// stage, not done, and active or awaiting approval. A held task gives its slot up: it waits
    /// for an operator, and what stops the next task after a bad merge or deploy is the
    /// repository's freeze, which an operator clears (`/serial-gate/unfreeze`) to let it go.
    public static func occupies(_ state: TaskState) -> Bool {
        guard state.stage != .done, state.stage != state.track.stages.first else { return false }
        return [.active, .awaitingApproval].contains(state.status)
    }

    /// The verdict for a repository with `occupied` slots taken of `limit` (nil: no limit).
    public static func verdict(limit: Int?, occupied: Int, frozen: Bool, frozenReason: String?) -> Verdict {
        if frozen {
            return .closed(reason: "waiting: the repository is frozen (\(frozenReason ?? "no reason given"))")
        }
        if let limit, occupied >= limit {
            return .closed(reason: "waiting: the serial gate is full (\(occupied) of \(limit) active)")
        }
        return .open
    }

    /// The status a waiting task takes when the gate opens for it: what it would have had without
    /// the wait — awaiting approval when it just finished its first stage without `auto`.
    static func released(_ state: TaskState) -> TaskStatus {
        let stages = state.track.stages
        let justPastFirst = stages.count > 1 && state.stage == stages[1]
        return justPastFirst && !state.auto ? .awaitingApproval : .active
    }
}
