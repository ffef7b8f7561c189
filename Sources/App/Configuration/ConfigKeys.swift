import Yams

/// Every key `ORCH_CONFIG` knows, so that an unknown one — a typo such as `tset_command`, or a
/// key of a newer release — stops the start with its path instead of being silently ignored.
/// Types and values are checked by the decoder afterwards; this only walks the keys.
enum ConfigKeys {
    /// What a YAML node may hold.
    indirect enum Shape: Sendable {
        /// A value whose own keys are not checked here.
        case leaf
        /// A mapping with exactly these keys (each optional).
        case keys([String: Shape])
        /// A list of one shape.
        case list(Shape)
        /// A mapping of free keys (agent roles, gate names) to one shape.
        case named(Shape)
    }

    /// `repos[]`. `ci_fix_rounds` and `allowed_actors` are DESIGN's keys for the agent loop
    /// (issue #15): read so the design's example file starts, not acted on yet.
    static let repo: Shape = .keys([
        "project": .leaf, "plane_project_id": .leaf, "repo": .leaf, "clone_url": .leaf, "default_branch": .leaf,
        "test_command": .leaf, "coverage_command": .leaf, "deploy_command": .leaf, "health_url": .leaf, "ci": .leaf,
        "ci_timeout": .leaf, "max_active_tasks": .leaf,
        "coverage": .keys(["policy": .leaf, "floor": .leaf, "epsilon": .leaf]),
        "merge_verify": .keys(["window": .leaf]),
        "post_deploy": .keys(["window": .leaf, "interval": .leaf, "timeout": .leaf, "failures": .leaf]),
        "gates": .named(.leaf), "ci_fix_rounds": .leaf, "allowed_actors": .leaf,
    ])

    /// `agents.<role>`. `stall_timeout`, `resume` and `budget` likewise (issue #15).
    static let agent: Shape = .keys([
        "command": .leaf, "timeout": .leaf, "user": .leaf, "group": .leaf, "stall_timeout": .leaf, "resume": .leaf,
        "budget": .leaf,
    ])

    /// The whole file. `budgets` likewise (issue #15).
    static let file: Shape = .keys([
        "repos": .list(repo), "agents": .named(agent), "labels": .keys(["auto": .leaf, "bug": .leaf, "stop": .leaf]),
        "budgets": .keys(["per_task_usd": .leaf, "per_repo_day_usd": .leaf, "per_day_usd": .leaf]),
    ])

    /// Throws a `ConfigurationError` naming the first unknown key's path, e.g. `repos[0].tset_command`.
    static func check(_ text: String) throws {
        guard let node = try Yams.compose(yaml: text) else { return }
        try check(node, file, path: "")
    }

    private static func check(_ node: Node, _ shape: Shape, path: String) throws {
        func child(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        switch shape {
        case .leaf:
            return
        case .keys(let known):
            guard let mapping = node.mapping else { return }
            for (key, value) in mapping {
                let name = key.string ?? "\(key)"
                guard let inner = known[name] else {
                    throw ConfigurationError(
                        key: child(name),
                        problem: "unknown key; known here: \(known.keys.sorted().joined(separator: ", "))")
                }
                try check(value, inner, path: child(name))
            }
        case .list(let element):
            guard let sequence = node.sequence else { return }
            for (index, value) in sequence.enumerated() {
                try check(value, element, path: "\(path)[\(index)]")
            }
        case .named(let inner):
            guard let mapping = node.mapping else { return }
            for (key, value) in mapping {
                try check(value, inner, path: child(key.string ?? "\(key)"))
            }
        }
    }
}
