import Foundation
import Logging
import Store

/// The `process_webhook` job: turns a stored delivery into task changes.
///
/// Plane `issue` events create or refresh the task (labels choose the track and auto mode; `STOP`
/// cancels; label names compare case-insensitively), only when newer than what the task holds
/// (the work item's `updated_at`); new Plane comments starting `/approve`, `/retry`, `/stop` or
/// `/agent <text>` are commands (edits are not); the service's own comments are skipped. Gitea
/// `pull_request` events record the PR number and head/merge commits on the task of branch
/// `orch/<WORK-ITEM>`, `push` events to that branch its new head, `status` events the CI state of
/// whichever task has that commit as head or merge commit, and reviews and PR comments are kept for
/// the task's merge stage (`task_feedback`). A repository's `allowed_actors` decides whose events
/// and commands act at all. Events for a repository that is not configured are stored as
/// ignored, with the reason. Idempotent: a repeated run finds the task already in the resulting
/// state (or the delivery finished) and records nothing twice.
public struct WebhookProcessor: Sendable {
    /// Marks comments the orchestrator itself posts, so their webhooks are skipped.
    public static let ownCommentMarker = "<!-- orchestrator -->"

    let deliveries: WebhookStore
    let tasks: TaskStore
    let repos: [RepositorySettings]
    let labels: LabelSettings
    let projects: PlaneProjectResolver
    /// Whether `Depends on` / `Blocked by` lines of descriptions become task dependencies
    /// (`ORCH_TASK_DEPS_ENABLED`); a repository out of the gate's scope gets none either.
    let dependencies: Bool

    /// Creates the processor; `planeAPI` lets it resolve Plane projects configured without
    /// `plane_project_id`.
    public init(
        pool: ConnectionPool, repos: [RepositorySettings], labels: LabelSettings, planeAPI: PlaneAPISettings? = nil,
        dependencies: Bool = true
    ) {
        self.dependencies = dependencies
        self.deliveries = WebhookStore(pool: pool)
        self.tasks = TaskStore(pool: pool)
        self.repos = repos
        self.labels = labels
        self.projects = PlaneProjectResolver(repos: repos, api: planeAPI, pool: pool)
    }

    /// The job handler.
    public var handler: JobHandler {
        JobHandler(kind: ProcessWebhookJob.kind, timeout: .seconds(60)) { context in
            try await process(deliveryID: ProcessWebhookJob.payload(of: context.job).deliveryID, logger: context.logger)
        }
    }

    /// How processing a delivery ended, as recorded on its row.
    typealias Outcome = (status: DeliveryStatus, reason: String?)

    /// Processes one stored delivery.
    public func process(deliveryID: Int64, logger: Logger) async throws {
        guard let delivery = try await deliveries.delivery(id: deliveryID) else {
            throw PermanentJobFailure("webhook delivery \(deliveryID) does not exist")
        }
        guard delivery.status == .pending else { return }  // already done by an earlier attempt
        let event: WebhookEvent
        do {
            event = try WebhookEvent.decode(
                source: delivery.source, giteaEvent: delivery.event, body: Data(delivery.payload.text.utf8))
        } catch {
            throw PermanentJobFailure("delivery \(deliveryID) cannot be read: \(error)")
        }
        let outcome: Outcome
        switch event {
        case .planeIssue(let issue): outcome = try await planeIssue(issue)
        case .planeComment(let comment): outcome = try await planeComment(comment, deliveryID: deliveryID)
        case .giteaPullRequest(let pull):
            outcome = try await gitea(pull.repository) { try await giteaPullRequest(pull, repo: $0) }
        case .giteaStatus(let status):
            outcome = try await gitea(status.repository) { try await giteaStatus(status, repo: $0) }
        case .giteaPush(let push): outcome = try await gitea(push.repository) { try await giteaPush(push, repo: $0) }
        case .giteaReview(let review):
            outcome = try await gitea(review.repository) {
                try await giteaReview(review, repo: $0, deliveryID: deliveryID)
            }
        case .giteaComment(let comment):
            outcome = try await gitea(comment.repository) {
                try await giteaComment(comment, repo: $0, deliveryID: deliveryID)
            }
        case .unhandled: outcome = (.ignored, "no processor for \(delivery.source.rawValue) \(delivery.event)")
        }
        try await deliveries.finish(id: deliveryID, status: outcome.status, reason: outcome.reason)
        logger.info(
            "webhook processed",
            metadata: [
                "webhook.id": "\(deliveryID)", "webhook.event": "\(delivery.event)",
                "webhook.outcome": "\(outcome.status.rawValue)",
                "webhook.reason": "\(outcome.reason ?? "")",
            ])
    }

    private func planeIssue(_ event: PlaneIssueEvent) async throws -> Outcome {
        let data: PlaneIssue
        let writer: PlaneActor?
        switch event {
        case .deleted(let issueID):
            guard let task = try await tasks.task(planeIssueID: issueID) else {
                return (.ignored, "no task for deleted Plane issue \(issueID)")
            }
            if !task.state.status.isTerminal {
                try await tasks.apply(
                    .cancel, workItem: task.workItem, actor: "plane", reason: "work item deleted in Plane")
            }
            return (.processed, nil)
        case .written(_, let issue, let actor):
            data = issue
            writer = actor
        }
        let repo: RepositorySettings
        switch try await projects.resolve(projectID: data.project) {
        case .repository(let found): repo = found
        case .unknown(let reason): return (.ignored, reason)
        }
        if let refusal = Self.refusal(of: writer, by: repo) { return (.ignored, refusal) }
        let workItem = "\(repo.project)-\(data.sequenceID)"
        // Plane's `updated` payloads can be partial: an absent field is nil and keeps the stored value.
        let names = data.labelNames
        let lower = Set((names ?? []).map { $0.lowercased() })
        let description = data.descriptionStripped ?? data.descriptionHTML.map(Self.stripTags)
        let stamp = data.updatedAt
        var refusal: String?
        var created = false
        if let stamp, Date(timestamp: stamp) == nil {
            refusal = "work item updated_at '\(stamp.prefix(40))' is not a timestamp: its order is unknown"
        } else {
            do {
                created = try await tasks.upsert(
                    workItem: workItem, repo: repo.repo, title: data.name, description: description, labels: names,
                    track: labels.enabled && lower.contains(labels.bug.lowercased()) ? .bug : .full,
                    auto: names == nil ? nil : labels.enabled && lower.contains(labels.auto.lowercased()),
                    planeIssueID: data.id,
                    planeProjectID: data.project, planeState: data.stateName,
                    planeUpdatedAt: stamp.flatMap(Date.init(timestamp:)),
                    dependsOn: dependencies && !repo.gates.outOfScope.contains(.taskDependencies)
                        ? description.map(DependencyLines.parse) : nil
                ).created
            } catch let error as WorkItemUpdateRefused {
                refusal = error.description
            }
        }
        // STOP cancels whatever the delivery's order: cancelling is terminal, so a late STOP cannot
        // undo anything newer. It cancels the issue's own task, the one its comments reach.
        if lower.contains(labels.stop.lowercased()), let task = try await tasks.task(planeIssueID: data.id),
            !task.state.status.isTerminal
        {
            try await tasks.apply(.cancel, workItem: task.workItem, actor: "plane", reason: "\(labels.stop) label")
            let cancelled = "\(task.workItem) cancelled by the \(labels.stop) label"
            return (.processed, cancelled + (refusal.map { "; nothing else applied: \($0)" } ?? ""))
        }
        if let refusal { return (.ignored, refusal) }
        return (.processed, created ? "\(workItem) created" : "\(workItem) updated")
    }

    /// The commands of Plane comments. Only a comment as written (`created`) is one: an edit of an
    /// old comment must not approve, retry or stop whatever the task does now. An approval answers
    /// the stage that awaited approval when the comment was written, and only that wait. The
    /// command and its delivery's "processed" commit in one transaction, so nothing replays it.
    private func planeComment(_ event: PlaneCommentEvent, deliveryID: Int64) async throws -> Outcome {
        let action = event.action
        guard action == "created" else {
            return (.processed, "\(action == "updated" ? "edited" : action) comment: not a command")
        }
        let data = event.comment
        let html = data.html ?? ""
        if html.contains(Self.ownCommentMarker) { return (.ignored, "the orchestrator's own comment") }
        let text = data.stripped ?? Self.stripTags(html)
        let command =
            text.trimmingCharacters(in: .whitespacesAndNewlines).split(whereSeparator: \.isWhitespace).first.map(
                String.init) ?? ""
        guard ["/approve", "/retry", "/stop", "/agent"].contains(command.lowercased()) else {
            return (.processed, "not a command")
        }
        guard let (task, history) = try await tasks.taskWithHistory(planeIssueID: data.issue) else {
            return (.ignored, "no task for Plane issue \(data.issue)")
        }
        if let repo = repos.first(where: { $0.repo == task.repo }),
            let refusal = Self.refusal(of: event.actor, by: repo)
        {
            return (.ignored, "\(command) not applied: \(refusal)")
        }
        let taskEvent: TaskEvent
        switch command.lowercased() {
        case "/approve":
            guard let writtenAt = data.createdAt.flatMap(Date.init(timestamp:)) else {
                return (
                    .processed, "\(command) refused: the comment has no created_at, so the stage it answers is unknown"
                )
            }
            do {
                let target = try TaskLifecycle.approvalTarget(writtenAt: writtenAt, history: history, visit: task.visit)
                taskEvent = .approvedStage(target.stage, visit: target.visit)
            } catch let error as ApprovalWithoutTarget {
                return (.processed, "\(command) refused: \(error)")
            }
        case "/retry": taskEvent = .retry
        case "/agent":
            // The words after the command are the agent's feedback.
            let words = text.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(command.count)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard !words.isEmpty else {
                return (.processed, "/agent refused: say what the agent should do: /agent <text>")
            }
            let request = String(words.prefix(Self.maxFeedbackLength))
            if task.state.status == .active, task.state.stage.isAgentStage {
                // Its agent may be at work: the stage's job runs it again with this when it ends.
                let kept = try await tasks.recordAgentFeedback(
                    workItem: task.workItem, author: event.actorName, text: request, deliveryID: deliveryID)
                return (
                    .processed,
                    kept
                        ? "/agent kept for \(task.workItem): its \(task.state.stage.rawValue) stage runs again with it"
                        : "already recorded by another run of this delivery's job"
                )
            }
            guard task.state.status == .awaitingApproval else {
                return (
                    .processed,
                    "/agent refused: it applies to an agent stage that runs or awaits approval; "
                        + "\(task.workItem) is \(task.state.status.rawValue) in \(task.state.stage.rawValue)"
                )
            }
            taskEvent = .agentFeedback(
                feedback: "A person asked on the work item (\(event.actorName ?? "Plane")): " + request)
        default: taskEvent = .cancel
        }
        let actor = "plane:\(event.actorName ?? "user")"
        let applied: Outcome = (.processed, "\(command) applied to \(task.workItem)")
        do {
            let found = try await tasks.apply(
                taskEvent, workItem: task.workItem, actor: actor, reason: "\(command) comment"
            ) { connection in
                try await WebhookStore.finish(
                    id: deliveryID, status: applied.status, reason: applied.reason, on: connection)
            }
            return found == nil ? (.ignored, "no task \(task.workItem) any more") : applied
        } catch let error as IllegalTransition {
            // Not an error of the delivery: the command does not fit the task's state. Record why.
            return (.processed, "\(command) refused: \(error)")
        } catch is DeliveryAlreadyFinished {
            return (.processed, "already finished by another run of this delivery's job; nothing applied twice")
        }
    }

    /// Why `actor` (a Plane user or a Gitea user) may not act on `repo`'s tasks (its
    /// `allowed_actors` does not name them), or nil when they may. An event that names no one
    /// (`role`: actor, author) is refused where a list is set.
    static func refusal(
        of actor: (any WebhookActor)?, by repo: RepositorySettings, naming role: String = "actor"
    ) -> String? {
        guard let allowed = repo.allowedActors else { return nil }
        guard let actor else { return "the event names no \(role) and \(repo.repo) has allowed_actors" }
        return actor.isNamed(in: allowed) ? nil : "\(actor.label) is not in allowed_actors of \(repo.repo)"
    }

    /// Runs `body` for an event of a configured repository; any other repository's is ignored.
    private func gitea(_ repository: GiteaRepository, _ body: (String) async throws -> Outcome) async throws -> Outcome
    {
        let fullName = repository.fullName
        guard repos.contains(where: { $0.repo == fullName }) else {
            return (.ignored, "repository \(fullName) is not configured (repos[].repo)")
        }
        return try await body(fullName)
    }

    /// A review of a task's pull request: changes requested or a review comment are kept for the
    /// task's merge stage, which sends it back to development with them; an approval is recorded.
    private func giteaReview(_ event: GiteaReviewEvent, repo: String, deliveryID: Int64) async throws -> Outcome {
        let kind: TaskFeedback.Kind =
            switch event.verdict {
            case .approved: .approved
            case .changesRequested: .changesRequested
            case .comment: .comment
            }
        return try await feedback(
            kind, source: "gitea_review", body: event.review.content, author: event.sender, number: event.number,
            repo: repo, deliveryID: deliveryID)
    }

    /// A comment on a task's pull request (a new one: an edit or a deletion is not feedback).
    private func giteaComment(_ event: GiteaCommentEvent, repo: String, deliveryID: Int64) async throws -> Outcome {
        guard event.onPullRequest else {
            return (.ignored, "comment on issue #\(event.issue.number), not a pull request")
        }
        guard event.action == "created" else { return (.processed, "\(event.action) comment: not feedback") }
        return try await feedback(
            .comment, source: "gitea_comment", body: event.comment.body, author: event.author,
            number: event.issue.number, repo: repo, deliveryID: deliveryID)
    }

    /// Records a review or comment for the task whose pull request `number` is, unless it is the
    /// orchestrator's own, empty, or from someone the repository's `allowed_actors` does not name.
    private func feedback(
        _ kind: TaskFeedback.Kind, source: String, body: String, author: GiteaUser?, number: Int, repo: String,
        deliveryID: Int64
    ) async throws -> Outcome {
        if body.contains(Self.ownCommentMarker) { return (.ignored, "the orchestrator's own comment") }
        let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
        guard kind == .approved || !text.isEmpty else {
            return (.processed, "empty \(kind.rawValue): nothing to apply")
        }
        if let settings = repos.first(where: { $0.repo == repo }),
            let refusal = Self.refusal(of: author, by: settings, naming: "author")
        {
            return (.ignored, refusal)
        }
        switch try await tasks.recordFeedback(
            repo: repo, number: number, kind: kind, source: source, author: author?.label,
            body: String(text.prefix(Self.maxFeedbackLength)), deliveryID: deliveryID)
        {
        case .recorded(let workItem, let pending):
            return (
                .processed,
                pending
                    ? "\(workItem): \(kind.rawValue) on PR #\(number) kept for its merge stage"
                    : "\(workItem): PR #\(number) approved by \(author?.label ?? "a reviewer")"
            )
        case .ignored(let reason):
            return (.ignored, reason)
        }
    }

    /// The most of one review or comment a development prompt gets.
    static let maxFeedbackLength = 8000

    private func giteaStatus(_ event: GiteaStatusEvent, repo: String) async throws -> Outcome {
        let (sha, context) = (event.sha, event.context)
        guard let state = CIState(rawValue: event.state) else {
            return (.ignored, "unknown commit status state '\(event.state.prefix(40))'")
        }
        let updates = try await tasks.recordCommitStatus(
            repo: repo, sha: sha, context: context, state: state, statusID: event.id ?? 0,
            targetURL: event.targetURL, description: event.description)
        for update in updates where update.commit == "head" && update.combinedState != .pending {
            try await tasks.wakeMerge(workItem: update.workItem)  // a merge waiting for this CI result
        }
        let what = "\(context) \(state.rawValue) on \(sha.prefix(12))"
        guard !updates.isEmpty else {
            // Kept anyway: the pull request naming this sha may arrive later and will pick it up.
            return (.processed, "\(what): no task has this commit yet (status kept)")
        }
        return (
            .processed,
            "\(what): "
                + updates.map { "\($0.workItem) \($0.commit) CI \($0.combinedState.rawValue)" }.joined(separator: ", ")
        )
    }

    private func giteaPush(_ event: GiteaPushEvent, repo: String) async throws -> Outcome {
        let (ref, after) = (event.ref, event.after)
        guard ref.hasPrefix("refs/heads/"),
            let workItem = Workspace.workItem(fromBranch: String(ref.dropFirst("refs/heads/".count)))
        else {
            return (.processed, "push to \(ref): not a task branch")
        }
        if after.allSatisfy({ $0 == "0" }) { return (.processed, "\(workItem): branch deleted") }
        let before = event.before.flatMap { $0.allSatisfy { $0 == "0" } ? nil : $0 }
        switch try await tasks.recordPushEvent(workItem: workItem, repo: repo, before: before, after: after) {
        case .applied: return (.processed, "\(workItem): branch pushed, head \(after.prefix(12))")
        case .ignored(let reason): return (.ignored, reason)
        }
    }

    private func giteaPullRequest(_ event: GiteaPullRequestEvent, repo: String) async throws -> Outcome {
        let (pull, number) = (event.pullRequest, event.number)
        let sha = pull.head.sha
        guard let workItem = pull.head.ref.flatMap(Workspace.workItem(fromBranch:)) else {
            return (.ignored, "pull request #\(number) is not from an orch/<WORK-ITEM> branch")
        }
        let mergeSHA = pull.merged ? pull.mergeCommitSHA : nil
        // The head's repository: Gitea sends head.repo (full) and head.repo_id; a fork's differ
        // from the event's repository.
        let headRepo: String?
        if let name = pull.head.repo?.fullName {
            headRepo = name
        } else if let id = pull.head.repoID {
            headRepo = id == event.repository.id ? repo : "repository id \(id)"
        } else {
            headRepo = nil
        }
        // Gitea's updated_at orders deliveries of one PR (a merge or close also stamps it).
        let stamp = pull.updatedAt ?? pull.closedAt ?? pull.mergedAt
        let updatedAt = stamp.flatMap { try? Date($0, strategy: .iso8601) }
        switch try await tasks.recordPullRequestEvent(
            workItem: workItem, repo: repo, headRepo: headRepo, number: number, headSHA: sha, mergeSHA: mergeSHA,
            updatedAt: updatedAt)
        {
        case .applied:
            return (
                .processed,
                "\(workItem): PR #\(number) head \(sha.prefix(12))"
                    + (mergeSHA.map { ", merged as \($0.prefix(12))" } ?? "")
            )
        case .ignored(let reason):
            return (.ignored, reason)
        }
    }

    static func stripTags(_ html: String) -> String {
        html.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression)
            .replacingOccurrences(of: "&nbsp;", with: " ")
    }
}
