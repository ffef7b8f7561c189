/// One way to run an agent role (`agents.<role>.runners[]`, or the role's own `command`): its
/// argv, the format its result is read in, and how it resumes a session.
public struct AgentRunner: Sendable {
    public var command: [String]
    public var format: any AgentOutputFormat
    /// `resume`: the arguments that make this runner resume a session, appended to `command`
    /// (`{session_id}` replaced), e.g. `["--resume", "{session_id}"]`; nil: always fresh.
    public var resume: [String]?

    public init(command: [String], format: any AgentOutputFormat = AgentOutputFormats.standard, resume: [String]? = nil)
    {
        self.command = command
        self.format = format
        self.resume = resume
    }

    /// The command that resumes `session`; nil without a `resume` template.
    public func resuming(_ session: String) -> [String]? {
        resume.map { command + $0.map { $0.replacingOccurrences(of: "{session_id}", with: session) } }
    }
}

extension AgentRunner: Equatable {
    public static func == (lhs: AgentRunner, rhs: AgentRunner) -> Bool {
        lhs.command == rhs.command && lhs.format.name == rhs.format.name && lhs.resume == rhs.resume
    }
}
