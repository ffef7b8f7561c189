import Foundation
import Store
import Workers
import Yams

/// The optional YAML file named by `ORCH_CONFIG`: repositories, agents and label names.
/// Every problem is reported with the key path, e.g. `repos[1].test_command: must be a non-empty list`.
struct ConfigFile: Sendable, Equatable {
    var repos: [RepositorySettings] = []
    /// An agent CLI per role.
    var agents: [String: AgentCommand] = [:]
    var labels = LabelSettings()
    /// Spending limits (`budgets:`).
    var budgets = BudgetLimits()

    private struct Raw: Decodable {
        struct Repo: Decodable {
            var project: String
            var plane_project_id: String?
            var repo: String
            var clone_url: String
            var default_branch: String?
            var test_command: [String]?
            var coverage_command: [String]?
            var deploy_command: [String]?
            var health_url: String?
            var ci: String?
            var ci_timeout: String?
            var max_active_tasks: Int?
            var coverage: Coverage?
            var merge_verify: MergeVerify?
            var post_deploy: PostDeploy?
            var gates: [String: Bool]?
            var allowed_actors: [String]?
            var ci_fix_rounds: Int?
        }
        struct Coverage: Decodable {
            var policy: String?
            var floor: Double?
            var epsilon: Double?
        }
        struct MergeVerify: Decodable {
            var window: String?
        }
        struct PostDeploy: Decodable {
            var window: String?
            var interval: String?
            var timeout: String?
            var failures: Int?
        }
        struct Runner: Decodable {
            var command: [String]
            var format: String?
            var resume: [String]?
        }
        struct Agent: Decodable {
            var command: [String]?
            var runners: [Runner]?
            var format: String?
            var timeout: String?
            var stall_timeout: String?
            var resume: [String]?
            var budget: [String]?
            var user: String?
            var group: String?
        }
        struct Labels: Decodable {
            var auto: String?
            var bug: String?
            var stop: String?
        }
        var repos: [Repo]?
        var agents: [String: Agent]?
        var labels: Labels?
        var budgets: Budgets?
        struct Budgets: Decodable {
            var per_task_usd: Double?
            var per_repo_day_usd: Double?
            var per_day_usd: Double?
        }
    }

    /// Reads and validates the file.
    static func load(path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigurationError(key: "ORCH_CONFIG", problem: "cannot read \(path)")
        }
        return try parse(text)
    }

    /// Parses and validates YAML text.
    static func parse(_ text: String) throws -> ConfigFile {
        let raw: Raw
        do {
            try ConfigKeys.check(text)
            raw = try YAMLDecoder().decode(Raw.self, from: text)
        } catch let error as DecodingError {
            throw describe(error)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(key: "ORCH_CONFIG", problem: "not valid YAML: \(error)")
        }
        var file = ConfigFile()
        var projects = Set<String>()
        for (index, repo) in (raw.repos ?? []).enumerated() {
            let key = "repos[\(index)]"
            guard repo.project.range(of: "^[A-Z][A-Z0-9]{0,19}$", options: .regularExpression) != nil else {
                throw ConfigurationError(
                    key: "\(key).project",
                    problem: "must be a Plane project identifier such as ORCH (capitals and digits)")
            }
            guard projects.insert(repo.project).inserted else {
                throw ConfigurationError(key: "\(key).project", problem: "\(repo.project) is configured twice")
            }
            guard repo.repo.range(of: "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", options: .regularExpression) != nil else {
                throw ConfigurationError(key: "\(key).repo", problem: "must be owner/name")
            }
            guard !repo.clone_url.isEmpty else {
                throw ConfigurationError(key: "\(key).clone_url", problem: "must not be empty")
            }
            for (name, command) in [
                ("test_command", repo.test_command), ("coverage_command", repo.coverage_command),
                ("deploy_command", repo.deploy_command),
            ] {
                if let command, command.isEmpty || command[0].isEmpty {
                    throw ConfigurationError(
                        key: "\(key).\(name)", problem: "must be a non-empty argv list such as [\"swift\", \"test\"]")
                }
            }
            if let health = repo.health_url {
                guard let url = URL(string: health), let scheme = url.scheme, ["http", "https"].contains(scheme),
                    url.host != nil
                else {
                    throw ConfigurationError(key: "\(key).health_url", problem: "must be an http(s) URL")
                }
            }
            var ci = RepositorySettings.CIRequirement.required
            if let text = repo.ci {
                guard let parsed = RepositorySettings.CIRequirement(rawValue: text) else {
                    throw ConfigurationError(key: "\(key).ci", problem: "expected required or none, got '\(text)'")
                }
                ci = parsed
            }
            let ciTimeout =
                try duration(repo.ci_timeout, key: "\(key).ci_timeout", example: "2h")
                ?? RepositorySettings.defaultCITimeout
            file.repos.append(
                RepositorySettings(
                    project: repo.project, planeProjectID: repo.plane_project_id, repo: repo.repo,
                    cloneURL: repo.clone_url,
                    defaultBranch: repo.default_branch ?? "main", testCommand: repo.test_command,
                    coverageCommand: repo.coverage_command,
                    deployCommand: repo.deploy_command, healthURL: repo.health_url, ci: ci, ciTimeout: ciTimeout,
                    gates: try gates(repo, key: key), allowedActors: try allowedActors(repo, key: key),
                    ciFixRounds: try ciFixRounds(repo, key: key)))
        }
        for (role, agent) in raw.agents ?? [:] {
            let runners = try runners(agent, role: role)
            var timeout: Duration?
            if let text = agent.timeout {
                guard let parsed = EnvironmentReader.parseDuration(text), parsed > .zero else {
                    throw ConfigurationError(
                        key: "agents.\(role).timeout", problem: "expected a duration such as 45m, got '\(text)'")
                }
                timeout = parsed
            }
            file.agents[role] = AgentCommand(
                runners: runners, timeout: timeout, stallTimeout: try stallTimeout(agent, role: role),
                budget: try budgetTemplate(agent, role: role), identity: try identity(agent, role: role))
        }
        if let budgets = raw.budgets {
            func limit(_ value: Double?, _ name: String) throws -> Double? {
                guard let value else { return nil }
                guard value > 0, value.isFinite else {
                    throw ConfigurationError(
                        key: "budgets.\(name)", problem: "must be a positive amount in USD, got \(value)")
                }
                return value
            }
            file.budgets = BudgetLimits(
                perTaskUSD: try limit(budgets.per_task_usd, "per_task_usd"),
                perRepoDayUSD: try limit(budgets.per_repo_day_usd, "per_repo_day_usd"),
                perDayUSD: try limit(budgets.per_day_usd, "per_day_usd"))
        }
        if let labels = raw.labels {
            file.labels = LabelSettings(
                auto: labels.auto ?? "auto", bug: labels.bug ?? "bug", stop: labels.stop ?? "STOP")
        }
        return file
    }

    /// `stall_timeout`: a positive duration, or `off` (never stop a silent agent: one that prints
    /// only at its end, as `claude --output-format json` does, and runs longer than the default).
    private static func stallTimeout(_ agent: Raw.Agent, role: String) throws -> Duration? {
        guard let text = agent.stall_timeout else { return nil }
        if text.lowercased() == "off" { return .zero }
        return try duration(text, key: "agents.\(role).stall_timeout", example: "10m (or off)")
    }

    /// `ci_fix_rounds`: 0 (red CI holds the task at once, as before the loop) or more.
    private static func ciFixRounds(_ repo: Raw.Repo, key: String) throws -> Int {
        guard let rounds = repo.ci_fix_rounds else { return RepositorySettings.defaultCIFixRounds }
        guard rounds >= 0 else {
            throw ConfigurationError(key: "\(key).ci_fix_rounds", problem: "must be 0 or more, got \(rounds)")
        }
        return rounds
    }

    /// `resume`: an argv list naming `{session_id}` somewhere, or the session would never reach
    /// the agent.
    private static func resume(_ template: [String]?, key: String) throws -> [String]? {
        guard let template else { return nil }
        guard template.contains(where: { $0.contains("{session_id}") }) else {
            throw ConfigurationError(
                key: key,
                problem: "must be an argv list containing {session_id}, such as [\"--resume\", \"{session_id}\"]")
        }
        return template
    }

    /// `budget`: an argv list naming `{remaining_usd}`, or the amount would never reach the agent.
    private static func budgetTemplate(_ agent: Raw.Agent, role: String) throws -> [String]? {
        guard let template = agent.budget else { return nil }
        guard template.contains(where: { $0.contains("{remaining_usd}") }) else {
            throw ConfigurationError(
                key: "agents.\(role).budget",
                problem:
                    "must be an argv list containing {remaining_usd}, such as [\"--max-budget-usd\", \"{remaining_usd}\"]"
            )
        }
        return template
    }

    /// A role's runners: `command` (with `format` and `resume`) is one; `runners` lists several,
    /// each with its own. One of the two, not both.
    private static func runners(_ agent: Raw.Agent, role: String) throws -> [AgentRunner] {
        let key = "agents.\(role)"
        func runner(_ command: [String], format: String?, resume: [String]?, at path: String) throws -> AgentRunner {
            guard !command.isEmpty, !command[0].isEmpty else {
                throw ConfigurationError(key: "\(path).command", problem: "must be a non-empty argv list")
            }
            var read = AgentOutputFormats.standard
            if let format {
                guard let known = AgentOutputFormats.all[format] else {
                    throw ConfigurationError(
                        key: "\(path).format",
                        problem: "unknown format '\(format)'; expected one of "
                            + AgentOutputFormats.names.joined(separator: ", "))
                }
                read = known
            }
            return AgentRunner(
                command: command, format: read, resume: try Self.resume(resume, key: "\(path).resume"))
        }
        switch (agent.command, agent.runners) {
        case (let command?, nil):
            return [try runner(command, format: agent.format, resume: agent.resume, at: key)]
        case (nil, let runners?):
            guard !runners.isEmpty else {
                throw ConfigurationError(key: "\(key).runners", problem: "must list at least one runner")
            }
            for (name, value) in [("format", agent.format as Any?), ("resume", agent.resume)] where value != nil {
                throw ConfigurationError(
                    key: "\(key).\(name)",
                    problem: "goes in each runner (\(key).runners[].\(name)) when runners are listed")
            }
            return try runners.enumerated().map { index, entry in
                try runner(entry.command, format: entry.format, resume: entry.resume, at: "\(key).runners[\(index)]")
            }
        case (nil, nil):
            throw ConfigurationError(key: "\(key).command", problem: "missing: give command, or runners")
        case (_?, _?):
            throw ConfigurationError(key: "\(key).runners", problem: "give command or runners, not both")
        }
    }

    /// `allowed_actors`: Plane user ids or emails, none empty; an empty list would shut everyone
    /// out, which is what removing the repository does, so it is refused.
    private static func allowedActors(_ repo: Raw.Repo, key: String) throws -> [String]? {
        guard let list = repo.allowed_actors else { return nil }
        guard !list.isEmpty else {
            throw ConfigurationError(
                key: "\(key).allowed_actors",
                problem: "must name at least one Plane user id or email; omit it to allow everyone")
        }
        for (index, entry) in list.enumerated() where entry.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ConfigurationError(key: "\(key).allowed_actors[\(index)]", problem: "must not be empty")
        }
        return list.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// A positive duration such as `30s` or `2m`, or nil when the key is absent.
    private static func duration(_ text: String?, key: String, example: String) throws -> Duration? {
        guard let text else { return nil }
        guard let parsed = EnvironmentReader.parseDuration(text), parsed > .zero else {
            throw ConfigurationError(key: key, problem: "expected a duration such as \(example), got '\(text)'")
        }
        return parsed
    }

    /// `max_active_tasks`, `coverage`, `merge_verify`, `post_deploy` and `gates` (the scope: a
    /// gate named `false` does not apply to the repository) of one repository.
    private static func gates(_ repo: Raw.Repo, key: String) throws -> RepositoryGates {
        var gates = RepositoryGates()
        for (name, applies) in (repo.gates ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let gate = RepositoryGate(rawValue: name) else {
                throw ConfigurationError(
                    key: "\(key).gates.\(name)",
                    problem: "not a gate; expected one of "
                        + RepositoryGate.allCases.map(\.rawValue).joined(separator: ", "))
            }
            if !applies { gates.outOfScope.insert(gate) }
        }
        if let limit = repo.max_active_tasks {
            guard limit >= 1 else {
                throw ConfigurationError(key: "\(key).max_active_tasks", problem: "must be at least 1, got \(limit)")
            }
            gates.maxActiveTasks = limit
        }
        if let coverage = repo.coverage {
            if let text = coverage.policy {
                guard let policy = RepositoryGates.Coverage.Policy(rawValue: text) else {
                    throw ConfigurationError(
                        key: "\(key).coverage.policy", problem: "expected ratchet or absolute, got '\(text)'")
                }
                gates.coverage.policy = policy
            }
            for (name, value) in [("floor", coverage.floor), ("epsilon", coverage.epsilon)] {
                if let value, !(0...100).contains(value) {
                    throw ConfigurationError(
                        key: "\(key).coverage.\(name)", problem: "must be a percentage from 0 to 100, got \(value)")
                }
            }
            gates.coverage.floor = coverage.floor ?? gates.coverage.floor
            gates.coverage.epsilon = coverage.epsilon ?? gates.coverage.epsilon
        }
        if let window = try duration(repo.merge_verify?.window, key: "\(key).merge_verify.window", example: "30m") {
            gates.mergeVerifyWindow = window
        }
        if let watch = repo.post_deploy {
            let path = "\(key).post_deploy"
            gates.postDeploy.window =
                try duration(watch.window, key: "\(path).window", example: "5m") ?? gates.postDeploy.window
            gates.postDeploy.interval =
                try duration(watch.interval, key: "\(path).interval", example: "10s") ?? gates.postDeploy.interval
            gates.postDeploy.timeout =
                try duration(watch.timeout, key: "\(path).timeout", example: "5s") ?? gates.postDeploy.timeout
            if let failures = watch.failures {
                guard failures >= 1 else {
                    throw ConfigurationError(key: "\(path).failures", problem: "must be at least 1, got \(failures)")
                }
                gates.postDeploy.failures = failures
            }
        }
        return gates
    }

    /// The user (and group) an agent runs as, resolved now so a typo stops the start, not a stage.
    private static func identity(_ agent: Raw.Agent, role: String) throws -> ChildIdentity? {
        guard let user = agent.user else {
            if agent.group != nil {
                throw ConfigurationError(key: "agents.\(role).group", problem: "needs agents.\(role).user as well")
            }
            return nil
        }
        do {
            return try ChildIdentity.resolve(user: user, group: agent.group)
        } catch let failure as ChildIdentity.LookupFailure {
            let key = failure.description.hasPrefix("no such group") ? "group" : "user"
            throw ConfigurationError(key: "agents.\(role).\(key)", problem: failure.description)
        }
    }

    /// Refuses agents configured to run as another user when this process cannot switch users
    /// (it is not root): better a clear error at start than every agent stage failing to spawn.
    func checkAgentUsers(effectiveUserID: uid_t = geteuid()) throws {
        guard effectiveUserID != 0 else { return }
        for (role, agent) in agents.sorted(by: { $0.key < $1.key }) {
            guard let identity = agent.identity, identity.userID != effectiveUserID else { continue }
            throw ConfigurationError(
                key: "agents.\(role).user",
                problem: "running the agent as \(identity.userName) needs the orchestrator to run as root "
                    + "(it runs as uid \(effectiveUserID))")
        }
    }

    private static func describe(_ error: DecodingError) -> ConfigurationError {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text.isEmpty ? "ORCH_CONFIG" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return ConfigurationError(key: path(context.codingPath + [key]), problem: "missing")
        case .typeMismatch(let type, let context):
            let expected: String
            switch "\(type)" {
            case "String": expected = "a string"
            case "Array<String>", "Sequence", "UnkeyedDecodingContainer": expected = "a list of strings"
            case "Dictionary<String, Any>", "KeyedDecodingContainer", "Mapping": expected = "a mapping"
            default: expected = "\(type)"
            }
            return ConfigurationError(key: path(context.codingPath), problem: "must be \(expected)")
        case .valueNotFound(_, let context):
            return ConfigurationError(key: path(context.codingPath), problem: "must not be empty")
        case .dataCorrupted(let context):
            return ConfigurationError(key: path(context.codingPath), problem: context.debugDescription)
        @unknown default:
            return ConfigurationError(key: "ORCH_CONFIG", problem: "\(error)")
        }
    }
}
