import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TestSupport

/// A small local HTTP server standing in for an outside API (Plane, Gitea, …) during a test.
///
/// `with` runs it on a free port for the duration of `body` only: the server lives in a child task
/// of a task group and is cancelled when the body returns or throws.
enum StandInServer {
    static func with<T: Sendable>(
        _ router: Router<BasicRequestContext>, _ body: (URL) async throws -> T
    ) async throws -> T {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "stand-in")
        logger.logLevel = .error
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else {
                throw TestSetupError("stand-in server did not start")
            }
            let result = try await body(URL(string: "http://127.0.0.1:\(port)")!)
            group.cancelAll()
            return result
        }
    }
}

/// A Gitea stand-in for the pull-request calls, behaving like Gitea where the orchestrator
/// depends on it: the list honours `state`, `page` and `limit` (newest first, at most 50 a page)
/// and a query escaped into the path (`pulls%3Fstate=…`) is an unknown route (404); opening a
/// second open PR for the same head repository, branch and base answers 409; a pull request
/// shows `state`, `merged`, `merge_commit_sha`, its head as the branch is now and `updated_at`
/// (whole seconds, bumped when the head moves); a merge reads `Do`, `head_commit_id`,
/// `MergeTitleField`, `MergeMessageField` and `delete_branch_after_merge` (other snake_case names
/// are ignored, as Gitea ignores them), answers 404 for a closed PR, 409 "head out of date" when
/// the head moved and 405 once merged, unless the test scripted its next answers.
final class GiteaStandIn: Sendable {
    /// One pull request as the stand-in keeps it.
    struct Pull: Sendable {
        var number: Int
        var headRef: String
        var headRepo: String
        var baseRef: String
        var headSHA: String
        var state = "open"
        var mergeSHA: String?
        var updatedAt = Date()
    }

    /// A merge request's fields as received.
    struct MergeCall: Sendable, Equatable {
        var number: Int
        var headCommitID: String?
        var title: String?
        var message: String?
        var deleteBranchAfterMerge: Bool?
    }

    let repo: String
    /// The head commit of a branch of `repo` now (for a new PR and the merge's stale-head check).
    let headOf: @Sendable (String) throws -> String
    /// Performs a merge with the commit message Gitea would write; returns the merge commit.
    let performMerge: @Sendable (Pull, String) throws -> String
    /// Deletes a merged head branch when the merge asked for it (`delete_branch_after_merge`).
    let deleteBranch: @Sendable (String) throws -> Void
    /// The combined status every commit reports.
    let ciState: SharedValue<String>
    /// The latest status of each context every commit lists (`statuses[].status`), if any.
    let ciStatuses = SharedValue<[String]>([])
    /// Answers the next merge requests get instead of merging: (HTTP status, JSON body).
    private let scriptedMerges = Mutex<[(Int, String)]>([])
    private let pulls = Mutex<[Pull]>([])
    private let requests = CallLog()
    private let merges = Mutex<[MergeCall]>([])
    /// Outages: every request whose `METHOD path` (below the repository) has one of these
    /// prefixes is answered with its status and nothing else happens (Gitea down, a 404, …).
    let outages = SharedValue<[(prefix: String, status: Int)]>([])

    init(
        repo: String, ciState: String = "success",
        headOf: @escaping @Sendable (String) throws -> String = { _ in String(repeating: "0", count: 40) },
        performMerge: @escaping @Sendable (Pull, String) throws -> String = { _, _ in String(repeating: "1", count: 40)
        },
        deleteBranch: @escaping @Sendable (String) throws -> Void = { _ in }
    ) {
        self.deleteBranch = deleteBranch
        self.repo = repo
        self.ciState = SharedValue(ciState)
        self.headOf = headOf
        self.performMerge = performMerge
    }

    /// A stand-in over a bare git repository `remote` (scratch clones go under `root`): heads are
    /// the remote's branches, a merge really merges with Gitea's message and pushes the default
    /// branch, and `delete_branch_after_merge` deletes the branch in the remote.
    static func over(remote: URL, root: URL, repo: String = "acme/orch", ciState: String = "success") -> GiteaStandIn {
        let git: @Sendable ([String], URL) throws -> String = {
            try runGit($0, in: $1).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return GiteaStandIn(
            repo: repo, ciState: ciState, headOf: { try git(["rev-parse", $0], remote) },
            performMerge: { pull, message in
                let work = root.appendingPathComponent("gitea-merge-\(UUID().uuidString.prefix(6))")
                _ = try git(["clone", "--quiet", remote.path, work.path], root)
                _ = try git(["merge", "--no-ff", "--quiet", "-m", message, "origin/\(pull.headRef)"], work)
                _ = try git(["push", "--quiet", "origin", "HEAD:\(pull.baseRef)"], work)
                return try git(["rev-parse", "HEAD"], work)
            },
            deleteBranch: { branch in _ = try git(["branch", "-D", branch], remote) })
    }

    /// Adds a pull request (another branch's, a fork's, …); returns its number.
    @discardableResult
    func add(
        headRef: String, headRepo: String, baseRef: String = "main", headSHA: String = "", state: String = "open"
    ) -> Int {
        pulls.withLock { pulls in
            let number = (pulls.map(\.number).max() ?? 0) + 1
            pulls.append(
                Pull(
                    number: number, headRef: headRef, headRepo: headRepo, baseRef: baseRef, headSHA: headSHA,
                    state: state))
            return number
        }
    }

    /// Makes the next merge request answer `status` with `body` (JSON text), as Gitea would.
    func scriptMergeAnswer(_ status: Int, _ body: String) {
        scriptedMerges.withLock { $0.append((status, body)) }
    }

    /// Closes a pull request without merging it (as a person would in Gitea's UI).
    func close(_ number: Int) {
        pulls.withLock { pulls in
            if let index = pulls.firstIndex(where: { $0.number == number }) {
                pulls[index].state = "closed"
                pulls[index].updatedAt = Date()
            }
        }
    }

    /// Every request as `METHOD path?query`, in order.
    var requestLog: [String] { requests.all }
    /// Every merge request's fields, in order.
    var mergeCalls: [MergeCall] { merges.withLock { $0 } }
    /// The pull requests now.
    var all: [Pull] { pulls.withLock { $0 } }

    private func json(_ status: HTTPResponse.Status, _ object: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        return Response(status: status, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func object(_ pull: Pull) -> [String: Any] {
        [
            "number": pull.number, "state": pull.state, "merged": pull.mergeSHA != nil,
            "merge_commit_sha": pull.mergeSHA as Any, "mergeable": true,
            "updated_at": pull.updatedAt.formatted(Date.ISO8601FormatStyle()),
            "head": ["ref": pull.headRef, "sha": pull.headSHA, "repo": ["full_name": pull.headRepo]],
            "base": ["ref": pull.baseRef, "repo": ["full_name": repo]],
        ]
    }

    private static func body(_ request: Request) async throws -> [String: Any] {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    /// The routes, under `/api/v1/repos/<repo>`; anything else (an escaped `?` included) is 404.
    var router: Router<BasicRequestContext> {
        let router = Router()
        let prefix = "/api/v1/repos/\(repo)"
        router.middlewares.add(RequestLogger(log: requests))
        router.middlewares.add(Outage(prefix: prefix, outages: outages))
        router.post("\(prefix)/pulls") { request, _ -> Response in
            let body = try await Self.body(request)
            let head = body["head"] as? String ?? ""
            let base = body["base"] as? String ?? ""
            let sha = try self.headOf(head)
            let created: Pull? = self.pulls.withLock { pulls in
                guard
                    !pulls.contains(where: {
                        $0.state == "open" && $0.headRef == head && $0.headRepo == self.repo && $0.baseRef == base
                    })
                else { return nil }
                let number = (pulls.map(\.number).max() ?? 0) + 1
                let pull = Pull(number: number, headRef: head, headRepo: self.repo, baseRef: base, headSHA: sha)
                pulls.append(pull)
                return pull
            }
            guard let created else {
                return self.json(.conflict, ["message": "pull request already exists for these targets"])
            }
            return self.json(.created, self.object(created))
        }
        router.get("\(prefix)/pulls") { request, _ -> Response in
            let query = request.uri.queryParameters
            let state = query["state"].map(String.init) ?? "open"
            let page = max(1, query["page"].flatMap { Int(String($0)) } ?? 1)
            let limit = min(50, max(1, query["limit"].flatMap { Int(String($0)) } ?? 30))
            let matching = self.pulls.withLock { $0 }
                .filter { state == "all" || $0.state == state }
                .sorted { $0.number > $1.number }
            let slice = matching.dropFirst((page - 1) * limit).prefix(limit)
            return self.json(.ok, slice.map { pull in self.object(self.refreshed(pull)) })
        }
        router.get("\(prefix)/pulls/:number") { _, context -> Response in
            let number = try context.parameters.require("number", as: Int.self)
            guard let pull = self.pulls.withLock({ $0.first { $0.number == number } }) else {
                return self.json(.notFound, ["message": "not found"])
            }
            return self.json(.ok, self.object(self.refreshed(pull)))
        }
        router.get("\(prefix)/commits/:sha/status") { _, _ -> Response in
            self.json(
                .ok,
                [
                    "state": self.ciState.value,
                    "statuses": self.ciStatuses.value.enumerated().map {
                        ["context": "ci/\($0.offset)", "status": $0.element]
                    },
                ])
        }
        router.post("\(prefix)/pulls/:number/merge") { request, context -> Response in
            let number = try context.parameters.require("number", as: Int.self)
            let body = try await Self.body(request)
            let call = MergeCall(
                number: number, headCommitID: body["head_commit_id"] as? String,
                title: body["MergeTitleField"] as? String, message: body["MergeMessageField"] as? String,
                deleteBranchAfterMerge: body["delete_branch_after_merge"] as? Bool)
            self.merges.withLock { $0.append(call) }
            if let (status, text) = self.scriptedMerges.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                return Response(
                    status: HTTPResponse.Status(code: status), body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            }
            // Gitea answers a merge of a closed pull request with 404 (ErrIsClosed → NotFound).
            guard let pull = self.pulls.withLock({ $0.first { $0.number == number } }),
                pull.state == "open" || pull.mergeSHA != nil
            else {
                return self.json(.notFound, ["message": "not found"])
            }
            guard pull.mergeSHA == nil else { return self.json(.methodNotAllowed, ["message": "already merged"]) }
            let head = try self.headOf(pull.headRef)
            if let expected = call.headCommitID, !expected.isEmpty, expected != head {
                return self.json(.conflict, ["message": "head out of date"])
            }
            // Gitea's commit message: the title (a default without one), a blank line, the message.
            let title = call.title?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            var message =
                title.isEmpty
                ? "Merge pull request '#\(number)' from \(pull.headRef) into \(pull.baseRef)" : title
            if let extra = call.message?.trimmingCharacters(in: .whitespacesAndNewlines), !extra.isEmpty {
                message += "\n\n" + extra
            }
            let sha = try self.performMerge(pull, message)
            self.pulls.withLock { pulls in
                if let index = pulls.firstIndex(where: { $0.number == number }) {
                    pulls[index].mergeSHA = sha
                    pulls[index].state = "closed"
                    pulls[index].updatedAt = Date()
                }
            }
            if call.deleteBranchAfterMerge == true { try self.deleteBranch(pull.headRef) }
            return self.json(.ok, [:])
        }
        return router
    }

    /// The pull request with its head as the branch is now (Gitea follows pushes and stamps
    /// `updated_at` when the head moves).
    private func refreshed(_ pull: Pull) -> Pull {
        guard pull.headRepo == repo, pull.mergeSHA == nil, pull.state == "open", let sha = try? headOf(pull.headRef),
            sha != pull.headSHA
        else { return pull }
        return pulls.withLock { pulls in
            guard let index = pulls.firstIndex(where: { $0.number == pull.number }) else { return pull }
            pulls[index].headSHA = sha
            pulls[index].updatedAt = Date()
            return pulls[index]
        }
    }
}

/// Records `METHOD path?query` of every request a stand-in gets.
struct RequestLogger: RouterMiddleware {
    let log: CallLog

    func handle(
        _ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response
    ) async throws -> Response {
        log.append("\(request.method) \(request.uri.path)\(request.uri.query.map { "?\($0)" } ?? "")")
        return try await next(request, context)
    }
}

/// Answers requests matching a scripted outage with its status (see `GiteaStandIn.outages`).
struct Outage: RouterMiddleware {
    let prefix: String
    let outages: SharedValue<[(prefix: String, status: Int)]>

    func handle(
        _ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response
    ) async throws -> Response {
        let call = "\(request.method) \(request.uri.path.replacingOccurrences(of: prefix, with: ""))"
        guard let outage = outages.value.first(where: { call.hasPrefix($0.prefix) }) else {
            return try await next(request, context)
        }
        return Response(
            status: HTTPResponse.Status(code: outage.status),
            body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"message":"stand-in outage"}"#)))
    }
}
