/// An agent command for one role (`agents:` in `ORCH_CONFIG`).
public struct AgentCommand: Sendable, Equatable {
    public var command: [String]
    public var timeout: Duration?
    /// The user (and group) the agent runs as (`agents.<role>.user`, `group`), when not the
    /// orchestrator's own; resolved from names when the configuration is read.
    public var identity: ChildIdentity?

    public init(command: [String], timeout: Duration?, identity: ChildIdentity? = nil) {
        self.command = command
        self.timeout = timeout
        self.identity = identity
    }
}
