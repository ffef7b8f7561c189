/// One repository the orchestrator works on, as configured (`repos:` in `ORCH_CONFIG`).
public struct RepositorySettings: Sendable, Equatable {
    /// Plane project identifier: work items are `<project>-<n>`.
    public var project: String
    /// Plane's project uuid, when configured (otherwise resolved through the Plane API).
    public var planeProjectID: String?
    /// Gitea `owner/name`.
    public var repo: String
    public var cloneURL: String
    public var defaultBranch: String
    public var testCommand: [String]?
    public var coverageCommand: [String]?
    public var deployCommand: [String]?
    public var healthURL: String?

    /// Creates settings.
    public init(
        project: String, planeProjectID: String?, repo: String, cloneURL: String, defaultBranch: String,
        testCommand: [String]?, coverageCommand: [String]?, deployCommand: [String]?, healthURL: String?
    ) {
        self.project = project
        self.planeProjectID = planeProjectID
        self.repo = repo
        self.cloneURL = cloneURL
        self.defaultBranch = defaultBranch
        self.testCommand = testCommand
        self.coverageCommand = coverageCommand
        self.deployCommand = deployCommand
        self.healthURL = healthURL
    }
}

/// The label names that drive behaviour (configurable; DESIGN §6).
public struct LabelSettings: Sendable, Equatable {
    public var auto: String
    public var bug: String
    public var stop: String

    /// The defaults: `auto`, `bug`, `STOP`.
    public init(auto: String = "auto", bug: String = "bug", stop: String = "STOP") {
        self.auto = auto
        self.bug = bug
        self.stop = stop
    }
}
