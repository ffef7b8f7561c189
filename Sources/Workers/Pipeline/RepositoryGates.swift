/// A repository's gate settings (`ORCH_CONFIG` `repos[]`): the serial gate's limit, the coverage
/// gate, how long a merge commit's CI may take, and the post-deploy watch. Durations as elsewhere
/// (`30s`, `2m`); the defaults are in the README.
public struct RepositoryGates: Sendable, Equatable {
    /// `max_active_tasks`: tasks of the repository past their first stage at once (default 1).
    public var maxActiveTasks: Int
    /// `coverage: {policy, floor, epsilon}`.
    public var coverage: Coverage
    /// `merge_verify: {window}`: how long the merge commit's CI on the default branch may take.
    public var mergeVerifyWindow: Duration
    /// `post_deploy: {window, interval, timeout, failures}`.
    public var postDeploy: PostDeploy
    /// The gates that do not apply to this repository: `gates: {name: false}` in its entry, or
    /// left out of a gate's `ORCH_<GATE>_REPOS` list. Empty by default: every gate applies.
    public var outOfScope: Set<RepositoryGate>

    /// The coverage gate's policy.
    public struct Coverage: Sendable, Equatable {
        /// `ratchet`: pass at ≥ baseline − epsilon and ≥ floor; the baseline rises on merged passes.
        /// `absolute`: the floor only.
        public enum Policy: String, Sendable, Equatable, CaseIterable {
            case ratchet, absolute
        }

        public var policy: Policy
        /// Percent (0–100) no measurement may fall below.
        public var floor: Double
        /// Percentage points a measurement may fall below the baseline and still pass.
        public var epsilon: Double

        /// The defaults: ratchet, floor 0, epsilon 0.1 points.
        public init(policy: Policy = .ratchet, floor: Double = 0, epsilon: Double = 0.1) {
            self.policy = policy
            self.floor = floor
            self.epsilon = epsilon
        }
    }

    /// The watch of `health_url` after a deploy.
    public struct PostDeploy: Sendable, Equatable {
        /// How long the deploy is watched.
        public var window: Duration
        /// Time between probes.
        public var interval: Duration
        /// One probe's timeout.
        public var timeout: Duration
        /// Consecutive failed probes that make the deploy degraded.
        public var failures: Int

        /// The defaults: 5m window, a probe every 10s with a 5s timeout, degraded after 3 failures in a row.
        public init(
            window: Duration = .seconds(300), interval: Duration = .seconds(10), timeout: Duration = .seconds(5),
            failures: Int = 3
        ) {
            self.window = window
            self.interval = interval
            self.timeout = timeout
            self.failures = failures
        }
    }

    /// The defaults: one active task, ratchet coverage, 30 minutes for the merge commit's CI, the
    /// post-deploy defaults.
    public init(
        maxActiveTasks: Int = 1, coverage: Coverage = .init(), mergeVerifyWindow: Duration = .seconds(1800),
        postDeploy: PostDeploy = .init(), outOfScope: Set<RepositoryGate> = []
    ) {
        self.maxActiveTasks = maxActiveTasks
        self.coverage = coverage
        self.mergeVerifyWindow = mergeVerifyWindow
        self.postDeploy = postDeploy
        self.outOfScope = outOfScope
    }
}
