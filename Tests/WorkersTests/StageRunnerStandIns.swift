import Foundation
import Store
import Synchronization

@testable import Workers

/// Git in memory, for the stage runner's unit tests: a real folder per task worktree (the gate
/// reads the agent's files from it), commits as snapshots of that folder, one remote task branch
/// per work item, and a record of every push and the expectation it was made under.
final class InMemoryGit: TaskWorkspace {
    struct Commit {
        var parent: String?
        var files: [String: String]
        /// The paths this commit changed from its parent.
        var changed: Set<String>
    }

    struct State {
        var commits: [String: Commit]
        var heads: [String: String] = [:]
        var remote: [String: String] = [:]
        var pushes: [Workspace.RemoteBranchExpectation] = []
        var localMerge: Workspace.LocalMerge = .merged(String(repeating: "d", count: 40))
        var deletedBranches: [String] = []
        var cleanedUp: [String] = []
        var nextCommit = 1
    }

    /// The default branch's only commit.
    static let mainHead = String(repeating: "0", count: 40)
    let root: URL
    let state: Mutex<State>

    init(root: URL) {
        self.root = root
        state = Mutex(State(commits: [Self.mainHead: Commit(parent: nil, files: [:], changed: [])]))
    }

    func worktree(_ workItem: String) -> URL { root.appendingPathComponent(workItem) }

    /// Writes `commit`'s files as the whole worktree (what a fresh checkout gives).
    private func checkout(_ commit: String, workItem: String) throws -> String {
        let directory = worktree(workItem)
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files = state.withLock { $0.commits[commit]?.files ?? [:] }
        for (path, content) in files {
            let file = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: file, atomically: true, encoding: .utf8)
        }
        return directory.path
    }

    /// The worktree's files as they are now.
    private func scan(_ workItem: String) -> [String: String] {
        let directory = worktree(workItem)
        var files: [String: String] = [:]
        let prefix = directory.standardizedFileURL.path + "/"
        let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
        while let url = walker?.nextObject() as? URL {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            files[String(url.standardizedFileURL.path.dropFirst(prefix.count))] =
                (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        }
        return files
    }

    func prepare(_ repo: RepositorySettings, workItem: String) async throws -> String {
        let head = state.withLock { state in
            let head = state.remote[workItem] ?? Self.mainHead
            state.heads[workItem] = head
            return head
        }
        return try checkout(head, workItem: workItem)
    }

    func prepare(_ repo: RepositorySettings, workItem: String, mergedCommit: String) async throws -> String {
        try checkout(mergedCommit, workItem: workItem)
    }

    func head(_ repo: RepositorySettings, workItem: String) async throws -> String {
        state.withLock { $0.heads[workItem] ?? Self.mainHead }
    }

    func remoteBranchHead(_ repo: RepositorySettings, workItem: String) async throws -> String? {
        state.withLock { $0.remote[workItem] }
    }

    func commitAll(_ repo: RepositorySettings, workItem: String, message: String) async throws -> Bool {
        let files = scan(workItem)
        return state.withLock { state in
            let parent = state.heads[workItem] ?? Self.mainHead
            let before = state.commits[parent]?.files ?? [:]
            let changed = Set(files.keys).union(before.keys).filter { files[$0] != before[$0] }
            guard !changed.isEmpty else { return false }
            let sha = String(format: "%040x", state.nextCommit)
            state.nextCommit += 1
            state.commits[sha] = Commit(parent: parent, files: files, changed: changed)
            state.heads[workItem] = sha
            return true
        }
    }

    struct Rejected: Error, CustomStringConvertible {
        let description: String
    }

    func push(
        _ repo: RepositorySettings, workItem: String, expecting: Workspace.RemoteBranchExpectation
    ) async throws {
        try state.withLock { state in
            let current = state.remote[workItem]
            switch expecting {
            case .absent where current != nil, .at(_) where current != expecting.sha:
                throw Rejected(description: "stale info: the remote branch is at \(current ?? "nothing")")
            default:
                state.pushes.append(expecting)
                state.remote[workItem] = state.heads[workItem]
            }
        }
    }

    func hasCommit(_ repo: RepositorySettings, _ sha: String) async throws -> Bool {
        state.withLock { $0.commits[sha] != nil }
    }

    func reset(_ repo: RepositorySettings, workItem: String, to sha: String) async throws {
        state.withLock { $0.heads[workItem] = sha }
        _ = try checkout(sha, workItem: workItem)
    }

    func savePatch(
        _ repo: RepositorySettings, workItem: String, since base: String, to path: String
    ) async throws -> Bool {
        let files = scan(workItem)
        let before = state.withLock { $0.commits[base]?.files ?? [:] }
        let changed = Set(files.keys).union(before.keys).filter { files[$0] != before[$0] }.sorted()
        guard !changed.isEmpty else { return false }
        try changed.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return true
    }

    func commitsOutsideTaskDocs(_ repo: RepositorySettings, workItem: String, since base: String) async throws -> Int {
        state.withLock { state in
            var count = 0
            var sha = state.heads[workItem]
            while let current = sha, current != base, let commit = state.commits[current] {
                if commit.changed.contains(where: { !$0.hasPrefix("docs/tasks/") }) { count += 1 }
                sha = commit.parent
            }
            return count
        }
    }

    func committedFile(
        _ repo: RepositorySettings, workItem: String, path: String, since base: String
    ) async throws -> (tracked: Bool, changed: Bool) {
        state.withLock { state in
            let now = state.heads[workItem].flatMap { state.commits[$0]?.files[path] }
            return (now != nil, now != state.commits[base]?.files[path])
        }
    }

    func mergeLocally(_ repo: RepositorySettings, workItem: String) async throws -> Workspace.LocalMerge {
        state.withLock { $0.localMerge }
    }

    func deleteRemoteBranch(_ repo: RepositorySettings, workItem: String) async throws {
        state.withLock {
            $0.remote[workItem] = nil
            $0.deletedBranches.append(workItem)
        }
    }

    func cleanup(_ repo: RepositorySettings, workItem: String) async throws {
        state.withLock { $0.cleanedUp.append(workItem) }
        try? FileManager.default.removeItem(at: worktree(workItem))
    }
}

extension Workspace.RemoteBranchExpectation {
    fileprivate var sha: String? {
        if case .at(let sha) = self { return sha }
        return nil
    }
}

/// An agent that does what the test says: writes files into the worktree and exits as told. Each
/// run is recorded in `agent_runs`, as the real launcher does, so outcomes can name it.
final class ScriptedAgent: AgentRunning {
    struct Reply: Sendable {
        var files: [String: String] = [:]
        var exitCode = 0
        var usage: AgentUsage?
        /// Reported as killed at its timeout (as the launcher reports it).
        var timedOut = false
    }

    let runs: AgentRunStore
    let replicaID: String
    let logs: URL
    let behaviour: Mutex<@Sendable (AgentLauncher.Request) -> Reply>
    let requests = Mutex<[AgentLauncher.Request]>([])

    init(
        pool: ConnectionPool, replicaID: String, logs: URL,
        behaviour: @escaping @Sendable (AgentLauncher.Request) -> Reply
    ) {
        runs = AgentRunStore(pool: pool)
        self.replicaID = replicaID
        self.logs = logs
        self.behaviour = Mutex(behaviour)
    }

    /// The stages the agent was run for, in order.
    var stages: [String] { requests.withLock { $0.compactMap(\.stage) } }

    func run(_ request: AgentLauncher.Request) async throws -> AgentLauncher.Outcome {
        requests.withLock { $0.append(request) }
        let reply = behaviour.withLock { $0 }(request)
        let log = logs.appendingPathComponent("run-\(UUID().uuidString.prefix(8)).log").path
        let id = try await runs.begin(
            .init(
                workItem: request.workItem, jobID: request.jobID, stage: request.stage, role: request.role,
                replicaID: request.replicaID ?? replicaID, host: "test", command: request.command, logPath: log))
        for (path, content) in reply.files {
            let file = URL(fileURLWithPath: request.directory).appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: file, atomically: true, encoding: .utf8)
        }
        try await runs.finish(
            id: id, exitCode: reply.exitCode, timedOut: reply.timedOut, usage: reply.usage,
            error: reply.timedOut ? "timed out" : nil)
        return AgentLauncher.Outcome(
            runID: id, exitCode: reply.exitCode, timedOut: reply.timedOut, cancelled: false, usage: reply.usage,
            logPath: log)
    }
}

/// Gitea in memory: pull requests opened from task branches (their head read from the git
/// stand-in's remote), combined CI states per commit, and merge answers given in order.
final class InMemoryGitea: GiteaAPI {
    struct State {
        var pulls: [Int: PullRequestSnapshot] = [:]
        var opened: [(head: String, base: String, title: String)] = []
        var ci: [String: CIState] = [:]
        /// Answers to merge calls, first to last; `.merged` once they run out.
        var mergeAnswers: [GiteaMergeResult] = []
        var merges: [(number: Int, head: String)] = []
        /// Calls to open a pull request that fail (retryably) before one succeeds.
        var failingOpens = 0
        /// The work item each pull request's branch belongs to.
        var branches: [Int: String] = [:]
        /// Every merge that merged, with when, and when its merge commit's CI was first seen
        /// green (the end of its verification).
        var mergeLog: [MergeCall] = []
        /// The combined CI a merge commit shows when the test set none in `ci`.
        var mergeCommitCI: CIState? = .success
        /// Run after a merge call merged, before Gitea answers it.
        var afterMerge: (@Sendable () async -> Void)?
    }

    /// One merge that merged, for checking that merges (with their verification) never overlap.
    struct MergeCall: Sendable {
        var number: Int
        var mergeSHA: String
        var merged: Date
        var verified: Date?
    }

    static let mergeCommit = String(repeating: "m", count: 40)

    /// The merge commit of pull request `number` (#1's is `mergeCommit`).
    static func mergeCommit(of number: Int) -> String {
        number == 1 ? mergeCommit : String(format: "%040d", number).replacingOccurrences(of: "0", with: "e")
    }
    let git: InMemoryGit
    let state = Mutex(State())

    init(git: InMemoryGit) { self.git = git }

    func openOrFindPullRequest(
        repo: String, head: String, base: String, title: String, body: String
    ) async throws -> (number: Int, headSHA: String) {
        let workItem = Workspace.workItem(fromBranch: head) ?? head
        let sha = git.state.withLock { $0.remote[workItem] } ?? ""
        return try state.withLock { state in
            if state.failingOpens > 0 {
                state.failingOpens -= 1
                throw GiteaAPIError(description: "Gitea opening a pull request answered 503", isRetryable: true)
            }
            state.opened.append((head, base, title))
            if let open = state.pulls.first(where: { $0.value.state == "open" }) {
                return (open.key, open.value.headSHA ?? "")
            }
            let number = state.pulls.count + 1
            state.branches[number] = workItem
            state.pulls[number] = PullRequestSnapshot(
                state: "open", merged: false, mergeSHA: nil, headSHA: sha, updatedAt: Date())
            return (number, sha)
        }
    }

    /// An open pull request's head is the task branch's head now, as Gitea shows it.
    func pullRequest(repo: String, number: Int) async throws -> PullRequestSnapshot? {
        let heads = git.state.withLock { $0.remote }
        return state.withLock { state in
            guard var pull = state.pulls[number] else { return nil }
            if !pull.merged, let workItem = state.branches[number], let head = heads[workItem], head != pull.headSHA {
                pull.headSHA = head
                pull.updatedAt = Date()
                state.pulls[number] = pull
            }
            return pull
        }
    }

    func failedChecks(repo: String, sha: String) async throws -> [FailedCheck] {
        state.withLock { state in
            [.failure, .error].contains(state.ci[sha])
                ? [FailedCheck(context: "ci/build", state: "failure", description: "tests failed", targetURL: nil)] : []
        }
    }

    func combinedStatus(repo: String, sha: String) async throws -> CIState? {
        state.withLock { state in
            guard state.pulls.values.contains(where: { $0.mergeSHA == sha }) else { return state.ci[sha] }
            let ci = state.ci[sha] ?? state.mergeCommitCI
            if ci == .success, let index = state.mergeLog.lastIndex(where: { $0.mergeSHA == sha && $0.verified == nil })
            {
                state.mergeLog[index].verified = Date()
            }
            return ci
        }
    }

    func merge(repo: String, number: Int, headSHA: String, message: String) async throws -> GiteaMergeResult {
        let answer = merged(number: number, headSHA: headSHA)
        if answer == .merged, let hook = state.withLock({ $0.afterMerge }) { await hook() }
        return answer
    }

    private func merged(number: Int, headSHA: String) -> GiteaMergeResult {
        state.withLock { state in
            state.merges.append((number, headSHA))
            let answer = state.mergeAnswers.isEmpty ? .merged : state.mergeAnswers.removeFirst()
            if answer == .merged {
                state.pulls[number]?.merged = true
                state.pulls[number]?.state = "closed"
                state.pulls[number]?.mergeSHA = Self.mergeCommit(of: number)
                state.mergeLog.append(MergeCall(number: number, mergeSHA: Self.mergeCommit(of: number), merged: Date()))
            }
            return answer
        }
    }
}

/// The in-memory git, Gitea and agent over a fresh scratch folder (removed by `remove()`), for
/// suites that drive a `StageRunner`; the agent's replica is registered.
struct StandInWorld {
    let root: URL
    let git: InMemoryGit
    let gitea: InMemoryGitea
    let agent: ScriptedAgent

    /// `behaviour` is the agent's (by default: writes nothing and succeeds).
    init(
        pool: ConnectionPool, replicaID: String,
        behaviour: @escaping @Sendable (AgentLauncher.Request) -> ScriptedAgent.Reply = { _ in .init() }
    ) async throws {
        try await ReplicaStore(pool: pool).register(
            id: replicaID, name: replicaID, host: "test", pid: 1, role: "worker")
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-standins-\(UUID().uuidString.prefix(8))")
        let logs = root.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        git = InMemoryGit(root: root.appendingPathComponent("worktrees"))
        gitea = InMemoryGitea(git: git)
        agent = ScriptedAgent(pool: pool, replicaID: replicaID, logs: logs, behaviour: behaviour)
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }
}
