/// An agent role's configuration (`agents:` in `ORCH_CONFIG`).
public struct AgentCommand: Sendable, Equatable {
    /// The ways to run it, in order (`runners:`, or one from `command`): a stage's first try uses
    /// the first, each later try of the stage the next (the last one stays), and a run the API
    /// rate-limited is followed at once by the next runner.
    public var runners: [AgentRunner]
    public var timeout: Duration?
    /// `stall_timeout`: how long the agent may print nothing before it is stopped and its stage
    /// retried as a transient failure. nil: the default (``defaultStallTimeout``); `.zero`: off.
    public var stallTimeout: Duration?
    /// `budget`: arguments appended to whichever runner runs when a budget is configured, with
    /// `{remaining_usd}` replaced by what is left (e.g. `["--max-budget-usd", "{remaining_usd}"]`).
    public var budget: [String]?
    /// The user (and group) the agent runs as (`agents.<role>.user`, `group`), when not the
    /// orchestrator's own; resolved from names when the configuration is read.
    public var identity: ChildIdentity?

    /// The stall timeout of a role that does not set one.
    public static let defaultStallTimeout: Duration = .seconds(10 * 60)

    /// A role with one runner: `command`, read as `format`, resumed with `resume`.
    public init(
        command: [String], timeout: Duration?, stallTimeout: Duration? = nil, resume: [String]? = nil,
        format: any AgentOutputFormat = AgentOutputFormats.standard, identity: ChildIdentity? = nil
    ) {
        self.init(
            runners: [AgentRunner(command: command, format: format, resume: resume)], timeout: timeout,
            stallTimeout: stallTimeout, identity: identity)
    }

    /// A role with several runners, in order (at least one).
    public init(
        runners: [AgentRunner], timeout: Duration?, stallTimeout: Duration? = nil, budget: [String]? = nil,
        identity: ChildIdentity? = nil
    ) {
        precondition(!runners.isEmpty, "an agent role needs a runner")
        self.budget = budget
        self.runners = runners
        self.timeout = timeout
        self.stallTimeout = stallTimeout
        self.identity = identity
    }

    /// The first runner's command.
    public var command: [String] { runners[0].command }

    /// The runner for a stage's `try` (0-based): the first for the first try, then the next, the
    /// last one for every try past the list.
    public func runner(forTry attempt: Int) -> (index: Int, runner: AgentRunner) {
        let index = min(max(0, attempt), runners.count - 1)
        return (index, runners[index])
    }

    /// The `budget` arguments for `remaining` dollars (two decimals, never below 0.01); none
    /// without a template or a limit.
    public func budgetArguments(remaining: Double?) -> [String] {
        guard let budget, let remaining else { return [] }
        let amount = String(format: "%.2f", max(0.01, remaining))
        return budget.map { $0.replacingOccurrences(of: "{remaining_usd}", with: amount) }
    }

    /// The stall timeout in effect: the configured one, the default, or nil when turned off.
    public var effectiveStallTimeout: Duration? {
        let limit = stallTimeout ?? Self.defaultStallTimeout
        return limit > .zero ? limit : nil
    }
}
