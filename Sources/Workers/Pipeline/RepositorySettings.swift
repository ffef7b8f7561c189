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
    /// Whether a merge through Gitea waits for the PR head's commit statuses (`ci:`).
    public var ci: CIRequirement
    /// How long a merge waits for a CI verdict on the PR head before the task is held (`ci_timeout:`).
    public var ciTimeout: Duration
    /// The repository gates' settings (`max_active_tasks`, `coverage`, `merge_verify`, `post_deploy`).
    public var gates: RepositoryGates
    /// Who may create and change its tasks and give commands (`allowed_actors:`, Plane user ids or
    /// emails); nil: everyone who can write in the Plane project.
    public var allowedActors: [String]?
    /// `ci_fix_rounds`: how many times red CI on the pull request's head sends the task back to
    /// development (with the failed checks) before it is held.
    public var ciFixRounds: Int

    /// What `ci:` says about commit statuses.
    public enum CIRequirement: String, Sendable, Equatable, CaseIterable {
        /// The default: merge only once the PR head's combined status is green.
        case required
        /// The repository has no CI: merge on the development gate alone, without waiting for statuses.
        case none
    }

    /// The CI wait when `ci_timeout` is not set: two hours.
    public static let defaultCITimeout: Duration = .seconds(2 * 3600)
    /// The CI fix rounds of a repository that does not set `ci_fix_rounds`.
    public static let defaultCIFixRounds = 2

    /// Creates settings.
    public init(
        project: String, planeProjectID: String?, repo: String, cloneURL: String, defaultBranch: String,
        testCommand: [String]?, coverageCommand: [String]?, deployCommand: [String]?, healthURL: String?,
        ci: CIRequirement = .required, ciTimeout: Duration = Self.defaultCITimeout, gates: RepositoryGates = .init(),
        allowedActors: [String]? = nil, ciFixRounds: Int = Self.defaultCIFixRounds
    ) {
        self.ciFixRounds = ciFixRounds
        self.gates = gates
        self.allowedActors = allowedActors
        self.ci = ci
        self.ciTimeout = ciTimeout
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

/// The label names that drive behaviour (configurable).
public struct LabelSettings: Sendable, Equatable {
    public var auto: String
    public var bug: String
    public var stop: String

    /// Whether `auto` and `bug` drive behaviour (`ORCH_AUTO_LABELS_ENABLED`, on by default). Off,
    /// every task takes the full track and waits for approval after each agent stage; the STOP
    /// label always cancels.
    public var enabled: Bool

    /// The defaults: `auto`, `bug`, `STOP`, on.
    public init(auto: String = "auto", bug: String = "bug", stop: String = "STOP", enabled: Bool = true) {
        self.auto = auto
        self.bug = bug
        self.stop = stop
        self.enabled = enabled
    }
}
