import Foundation
import Logging
import Store

/// The `process_webhook` job: turns a stored delivery into task changes (DESIGN §6).
///
/// Plane `issue` events create or refresh the task (labels choose the track and auto mode; `STOP`
/// cancels; label names compare case-insensitively), only when newer than what the task holds
/// (the work item's `updated_at`); new Plane comments starting `/approve`, `/retry` or `/stop` are
/// commands (edits are not); the service's own comments are skipped. Gitea `pull_request` events
/// record the PR number and head/merge commits on the task of branch `orch/<WORK-ITEM>`, `push`
/// events to that branch its new head, and `status` events the CI state of whichever task has that
/// commit as head or merge commit. Events for a repository that is not configured are stored as
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

    /// Creates the processor; `planeAPI` lets it resolve Plane projects configured without
    /// `plane_project_id`.
    public init(pool: ConnectionPool, repos: [RepositorySettings], labels: LabelSettings, planeAPI: PlaneAPISettings? = nil) {
        self.deliveries = WebhookStore(pool: pool)
        self.tasks = TaskStore(pool: pool)
        self.repos = repos
        self.labels = labels
        self.projects = PlaneProjectResolver(repos: repos, api: planeAPI, pool: pool)
    }

    /// The job handler.
    public var handler: JobHandler {
        JobHandler(kind: WebhookStore.processJobKind, timeout: .seconds(60)) { context in
            struct Payload: Decodable { let delivery_id: Int64 }
            let id = try context.job.payload.decode(Payload.self).delivery_id
            try await process(deliveryID: id, logger: context.logger)
        }
    }

    /// Processes one stored delivery.
    public func process(deliveryID: Int64, logger: Logger) async throws {
        guard let delivery = try await deliveries.delivery(id: deliveryID) else {
            throw PermanentJobFailure("webhook delivery \(deliveryID) does not exist")
        }
        guard delivery.status == "pending" else { return }  // already done by an earlier attempt
        guard let object = try JSONSerialization.jsonObject(with: Data(delivery.payload.text.utf8)) as? [String: Any] else {
            throw PermanentJobFailure("delivery \(deliveryID) is not a JSON object")
        }
        let outcome: (status: String, reason: String?)
        switch (delivery.source, delivery.event) {
        case ("plane", let event) where event.hasPrefix("issue."):
            outcome = try await planeIssue(object, action: String(event.dropFirst("issue.".count)))
        case ("plane", let event) where event.hasPrefix("issue_comment."):
            outcome = try await planeComment(object, action: String(event.dropFirst("issue_comment.".count)), deliveryID: deliveryID)
        case ("gitea", let event):
            outcome = try await gitea(object, event: event)
        default:
            outcome = ("ignored", "no processor for \(delivery.source) \(delivery.event)")
        }
        try await deliveries.finish(id: deliveryID, status: outcome.status, reason: outcome.reason)
        logger.info("webhook processed", metadata: [
            "webhook.id": "\(deliveryID)", "webhook.event": "\(delivery.event)", "webhook.outcome": "\(outcome.status)",
            "webhook.reason": "\(outcome.reason ?? "")",
        ])
    }

    private func planeIssue(_ object: [String: Any], action: String) async throws -> (String, String?) {
        guard let data = object["data"] as? [String: Any], let issueID = data["id"] as? String else {
            throw PermanentJobFailure("Plane issue event without data.id")
        }
        if action == "deleted" {
            guard let task = try await tasks.task(planeIssueID: issueID) else { return ("ignored", "no task for deleted Plane issue \(issueID)") }
            if !task.state.status.isTerminal {
                try await tasks.apply(.cancel, workItem: task.workItem, actor: "plane", reason: "work item deleted in Plane")
            }
            return ("processed", nil)
        }
        guard let projectID = data["project"] as? String, let sequence = (data["sequence_id"] as? NSNumber)?.intValue else {
            throw PermanentJobFailure("Plane issue event without data.project or data.sequence_id")
        }
        let repo: RepositorySettings
        switch try await projects.resolve(projectID: projectID) {
        case .repository(let found): repo = found
        case .unknown(let reason): return ("ignored", reason)
        }
        let workItem = "\(repo.project)-\(sequence)"
        // Plane's `updated` payloads can be partial: an absent field is nil and keeps the stored value.
        let names = (data["labels"] as? [Any])?.compactMap { ($0 as? [String: Any])?["name"] as? String ?? $0 as? String }
        let lower = Set((names ?? []).map { $0.lowercased() })
        let state = (data["state"] as? [String: Any])?["name"] as? String ?? data["state"] as? String
        let description = data["description_stripped"] as? String ?? (data["description_html"] as? String).map(Self.stripTags)
        let stamp = data["updated_at"] as? String
        var refusal: String?
        var created = false
        if let stamp, Date(timestamp: stamp) == nil {
            refusal = "work item updated_at '\(stamp.prefix(40))' is not a timestamp: its order is unknown"
        } else {
            do {
                created = try await tasks.upsert(
                    workItem: workItem, repo: repo.repo, title: data["name"] as? String, description: description, labels: names,
                    track: lower.contains(labels.bug.lowercased()) ? .bug : .full,
                    auto: names == nil ? nil : lower.contains(labels.auto.lowercased()), planeIssueID: issueID,
                    planeProjectID: projectID, planeState: state, planeUpdatedAt: stamp.flatMap(Date.init(timestamp:))
                ).created
            } catch let error as WorkItemUpdateRefused {
                refusal = error.description
            }
        }
        // STOP cancels whatever the delivery's order: cancelling is terminal, so a late STOP cannot
        // undo anything newer. It cancels the issue's own task, the one its comments reach.
        if lower.contains(labels.stop.lowercased()), let task = try await tasks.task(planeIssueID: issueID), !task.state.status.isTerminal {
            try await tasks.apply(.cancel, workItem: task.workItem, actor: "plane", reason: "\(labels.stop) label")
            let cancelled = "\(task.workItem) cancelled by the \(labels.stop) label"
            return ("processed", cancelled + (refusal.map { "; nothing else applied: \($0)" } ?? ""))
        }
        if let refusal { return ("ignored", refusal) }
        return ("processed", created ? "\(workItem) created" : "\(workItem) updated")
    }

    /// The commands of Plane comments. Only a comment as written (`created`) is one: an edit of an
    /// old comment must not approve, retry or stop whatever the task does now. An approval answers
    /// the stage that awaited approval when the comment was written, and only that wait. The
    /// command and its delivery's "processed" commit in one transaction, so nothing replays it.
    private func planeComment(_ object: [String: Any], action: String, deliveryID: Int64) async throws -> (String, String?) {
        guard action == "created" else { return ("processed", "\(action == "updated" ? "edited" : action) comment: not a command") }
        guard let data = object["data"] as? [String: Any], let issueID = data["issue"] as? String else {
            throw PermanentJobFailure("Plane comment event without data.issue")
        }
        let html = data["comment_html"] as? String ?? ""
        if html.contains(Self.ownCommentMarker) { return ("ignored", "the orchestrator's own comment") }
        let text = (data["comment_stripped"] as? String) ?? Self.stripTags(html)
        let command = text.trimmingCharacters(in: .whitespacesAndNewlines).split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
        guard ["/approve", "/retry", "/stop"].contains(command.lowercased()) else { return ("processed", "not a command") }
        guard let (task, history) = try await tasks.taskWithHistory(planeIssueID: issueID) else {
            return ("ignored", "no task for Plane issue \(issueID)")
        }
        let event: TaskEvent
        switch command.lowercased() {
        case "/approve":
            guard let writtenAt = (data["created_at"] as? String).flatMap(Date.init(timestamp:)) else {
                return ("processed", "\(command) refused: the comment has no created_at, so the stage it answers is unknown")
            }
            do {
                let target = try TaskLifecycle.approvalTarget(writtenAt: writtenAt, history: history, visit: task.visit)
                event = .approvedStage(target.stage, visit: target.visit)
            } catch let error as ApprovalWithoutTarget {
                return ("processed", "\(command) refused: \(error)")
            }
        case "/retry": event = .retry
        default: event = .cancel
        }
        let actor = "plane:\((object["activity"] as? [String: Any]).flatMap { ($0["actor"] as? [String: Any])?["display_name"] as? String } ?? "user")"
        let applied = ("processed", "\(command) applied to \(task.workItem)")
        do {
            let found = try await tasks.apply(event, workItem: task.workItem, actor: actor, reason: "\(command) comment") { connection in
                try await WebhookStore.finish(id: deliveryID, status: applied.0, reason: applied.1, on: connection)
            }
            return found == nil ? ("ignored", "no task \(task.workItem) any more") : applied
        } catch let error as IllegalTransition {
            // Not an error of the delivery: the command does not fit the task's state. Record why.
            return ("processed", "\(command) refused: \(error)")
        } catch is DeliveryAlreadyFinished {
            return ("processed", "already finished by another run of this delivery's job; nothing applied twice")
        }
    }

    private func gitea(_ object: [String: Any], event: String) async throws -> (String, String?) {
        guard let fullName = (object["repository"] as? [String: Any])?["full_name"] as? String else {
            throw PermanentJobFailure("Gitea event without repository.full_name")
        }
        guard repos.contains(where: { $0.repo == fullName }) else {
            return ("ignored", "repository \(fullName) is not configured (repos[].repo)")
        }
        switch event {
        case "pull_request": return try await giteaPullRequest(object, repo: fullName)
        case "status": return try await giteaStatus(object, repo: fullName)
        case "push": return try await giteaPush(object, repo: fullName)
        default: return ("ignored", "no processor for Gitea \(event)")
        }
    }

    private func giteaStatus(_ object: [String: Any], repo: String) async throws -> (String, String?) {
        guard let sha = object["sha"] as? String, let context = object["context"] as? String, let state = object["state"] as? String else {
            throw PermanentJobFailure("Gitea status event without sha, context or state")
        }
        guard ["pending", "success", "failure", "error", "warning"].contains(state) else {
            return ("ignored", "unknown commit status state '\(state.prefix(40))'")
        }
        let updates = try await tasks.recordCommitStatus(
            repo: repo, sha: sha, context: context, state: state, statusID: (object["id"] as? NSNumber)?.int64Value ?? 0,
            targetURL: object["target_url"] as? String, description: object["description"] as? String)
        for update in updates where update.commit == "head" && update.combinedState != "pending" {
            try await tasks.wakeMerge(workItem: update.workItem)  // a merge waiting for this CI result
        }
        let what = "\(context) \(state) on \(sha.prefix(12))"
        guard !updates.isEmpty else {
            // Kept anyway: the pull request naming this sha may arrive later and will pick it up.
            return ("processed", "\(what): no task has this commit yet (status kept)")
        }
        return ("processed", "\(what): " + updates.map { "\($0.workItem) \($0.commit) CI \($0.combinedState)" }.joined(separator: ", "))
    }

    private func giteaPush(_ object: [String: Any], repo: String) async throws -> (String, String?) {
        guard let ref = object["ref"] as? String, let after = object["after"] as? String else {
            throw PermanentJobFailure("Gitea push event without ref or after")
        }
        guard ref.hasPrefix("refs/heads/"), let workItem = Workspace.workItem(fromBranch: String(ref.dropFirst("refs/heads/".count))) else {
            return ("processed", "push to \(ref): not a task branch")
        }
        if after.allSatisfy({ $0 == "0" }) { return ("processed", "\(workItem): branch deleted") }
        let before = (object["before"] as? String).flatMap { $0.allSatisfy { $0 == "0" } ? nil : $0 }
        switch try await tasks.recordPushEvent(workItem: workItem, repo: repo, before: before, after: after) {
        case .applied: return ("processed", "\(workItem): branch pushed, head \(after.prefix(12))")
        case .ignored(let reason): return ("ignored", reason)
        }
    }

    private func giteaPullRequest(_ object: [String: Any], repo: String) async throws -> (String, String?) {
        guard let pull = object["pull_request"] as? [String: Any], let head = pull["head"] as? [String: Any],
              let sha = head["sha"] as? String, let number = (object["number"] as? NSNumber)?.intValue
        else { throw PermanentJobFailure("Gitea pull_request event without pull_request.head.sha or number") }
        guard let workItem = (head["ref"] as? String).flatMap(Workspace.workItem(fromBranch:)) else {
            return ("ignored", "pull request #\(number) is not from an orch/<WORK-ITEM> branch")
        }
        let merged = (pull["merged"] as? Bool) == true
        let mergeSHA = merged ? pull["merge_commit_sha"] as? String : nil
        // The head's repository: Gitea sends head.repo (full) and head.repo_id; a fork's differ
        // from the event's repository.
        let repository = object["repository"] as? [String: Any]
        let headRepo: String?
        if let name = (head["repo"] as? [String: Any])?["full_name"] as? String {
            headRepo = name
        } else if let id = (head["repo_id"] as? NSNumber)?.int64Value {
            headRepo = id == (repository?["id"] as? NSNumber)?.int64Value ? repo : "repository id \(id)"
        } else {
            headRepo = nil
        }
        // Gitea's updated_at orders deliveries of one PR (a merge or close also stamps it).
        let stamp = ["updated_at", "closed_at", "merged_at"].lazy.compactMap { pull[$0] as? String }.first
        let updatedAt = stamp.flatMap { try? Date($0, strategy: .iso8601) }
        switch try await tasks.recordPullRequestEvent(
            workItem: workItem, repo: repo, headRepo: headRepo, number: number, headSHA: sha, mergeSHA: mergeSHA, updatedAt: updatedAt)
        {
        case .applied:
            return ("processed", "\(workItem): PR #\(number) head \(sha.prefix(12))" + (mergeSHA.map { ", merged as \($0.prefix(12))" } ?? ""))
        case .ignored(let reason):
            return ("ignored", reason)
        }
    }

    static func stripTags(_ html: String) -> String {
        html.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression)
            .replacingOccurrences(of: "&nbsp;", with: " ")
    }
}
