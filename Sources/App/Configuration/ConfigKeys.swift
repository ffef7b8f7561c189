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

    /// `repos[]`.
    static let repo: Shape = .keys([
        "project": .leaf, "plane_project_id": .leaf, "repo": .leaf, "clone_url": .leaf, "default_branch": .leaf,
        "test_command": .leaf, "coverage_command": .leaf, "deploy_command": .leaf, "health_url": .leaf, "ci": .leaf,
        "ci_timeout": .leaf, "max_active_tasks": .leaf,
        "coverage": .keys(["policy": .leaf, "floor": .leaf, "epsilon": .leaf]),
        "merge_verify": .keys(["window": .leaf]),
        "post_deploy": .keys(["window": .leaf, "interval": .leaf, "timeout": .leaf, "failures": .leaf]),
        "gates": .named(.leaf), "ci_fix_rounds": .leaf, "allowed_actors": .leaf,
    ])

    /// `agents.<role>`.
    static let agent: Shape = .keys([
        "command": .leaf, "timeout": .leaf, "user": .leaf, "group": .leaf, "stall_timeout": .leaf, "resume": .leaf,
        "budget": .leaf, "format": .leaf,
        "runners": .list(.keys(["command": .leaf, "format": .leaf, "resume": .leaf])),
    ])

    /// The whole file.
    static let file: Shape = .keys([
        "repos": .list(repo), "agents": .named(agent), "labels": .keys(["auto": .leaf, "bug": .leaf, "stop": .leaf]),
        "budgets": .keys(["per_task_usd": .leaf, "per_repo_day_usd": .leaf, "per_day_usd": .leaf]),
    ])

    /// Throws a `ConfigurationError` naming the first unknown key's path, e.g. `repos[0].tset_command`.
    static func check(_ text: String) throws {
        if let first = try problems(text).first { throw first }
    }

    /// Every unknown key of the file, in document order, each with its path and the nearest
    /// known name (`orchestrator config check` lists them all).
    static func problems(_ text: String) throws -> [ConfigurationError] {
        guard let node = try Yams.compose(yaml: text) else { return [] }
        var found: [ConfigurationError] = []
        collect(node, file, path: "", into: &found)
        return found
    }

    private static func collect(_ node: Node, _ shape: Shape, path: String, into found: inout [ConfigurationError]) {
        func child(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        switch shape {
        case .leaf:
            return
        case .keys(let known):
            guard let mapping = node.mapping else { return }
            for (key, value) in mapping {
                let name = key.string ?? "\(key)"
                guard let inner = known[name] else {
                    let hint = nearest(to: name, in: known.keys).map { "did you mean '\($0)'? " } ?? ""
                    found.append(
                        ConfigurationError(
                            key: child(name),
                            problem: "unknown key; \(hint)known here: \(known.keys.sorted().joined(separator: ", "))"))
                    continue
                }
                collect(value, inner, path: child(name), into: &found)
            }
        case .list(let element):
            guard let sequence = node.sequence else { return }
            for (index, value) in sequence.enumerated() {
                collect(value, element, path: "\(path)[\(index)]", into: &found)
            }
        case .named(let inner):
            guard let mapping = node.mapping else { return }
            for (key, value) in mapping {
                collect(value, inner, path: child(key.string ?? "\(key)"), into: &found)
            }
        }
    }

    /// The known name closest to `name` by edit distance, when it is close enough to be a typo
    /// (at most a third of the name's length, and at least 1 and at most 3 edits).
    static func nearest(to name: String, in known: some Collection<String>) -> String? {
        let limit = min(3, max(1, name.count / 3))
        let scored = known.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { ($0.1, $0.0) < ($1.1, $1.0) }), best.1 <= limit else { return nil }
        return best.0
    }

    /// Levenshtein distance (insertions, deletions, substitutions), with a swap of two
    /// neighbouring characters counted as one edit.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
