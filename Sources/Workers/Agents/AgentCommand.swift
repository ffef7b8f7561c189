/// An agent command for one role (`agents:` in `ORCH_CONFIG`).
public struct AgentCommand: Sendable, Equatable {
    public var command: [String]
    public var timeout: Duration?
    /// `stall_timeout`: how long the agent may print nothing before it is stopped and its stage
    /// retried as a transient failure. nil: the default (``defaultStallTimeout``); `.zero`: off.
    public var stallTimeout: Duration?
    /// `resume`: the arguments that make the agent resume a session, appended to `command` when a
    /// stage is tried again (`{session_id}` is replaced by the session), e.g.
    /// `["--resume", "{session_id}"]`; nil: every run starts a fresh session.
    public var resume: [String]?
    /// The user (and group) the agent runs as (`agents.<role>.user`, `group`), when not the
    /// orchestrator's own; resolved from names when the configuration is read.
    public var identity: ChildIdentity?

    /// The stall timeout of a role that does not set one.
    public static let defaultStallTimeout: Duration = .seconds(10 * 60)

    public init(
        command: [String], timeout: Duration?, stallTimeout: Duration? = nil, resume: [String]? = nil,
        identity: ChildIdentity? = nil
    ) {
        self.resume = resume
        self.command = command
        self.timeout = timeout
        self.stallTimeout = stallTimeout
        self.identity = identity
    }

    /// The stall timeout in effect: the configured one, the default, or nil when turned off.
    public var effectiveStallTimeout: Duration? {
        let limit = stallTimeout ?? Self.defaultStallTimeout
        return limit > .zero ? limit : nil
    }

    /// The command that resumes `session`: `command` followed by `resume` with `{session_id}`
    /// replaced; nil without a `resume` template.
    public func resuming(_ session: String) -> [String]? {
        resume.map { command + $0.map { $0.replacingOccurrences(of: "{session_id}", with: session) } }
    }
}
