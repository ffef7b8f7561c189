import Foundation
import Store

/// What a stage's gate decided (DESIGN §7 defaults).
public enum GateVerdict: Sendable, Equatable {
    case pass(String)
    /// The stage is retried with this message as feedback (up to a limit).
    case fail(String)
    /// Review asked for changes: back to development with the review as feedback.
    case changesRequested(String)
}

/// The default gates of the agent stages: analysis → `spec.md`, architecture → `design.md`,
/// development → new commits on the branch and `test_command` passing, review → `review.md` whose
/// first line is `APPROVE` (or `REQUEST_CHANGES`). The coverage gate comes later.
struct StageGate: Sendable {
    let workspace: Workspace
    /// Runs `test_command` as the agents' user when one is configured.
    var commands = CommandRunner()
    var testTimeout: Duration = .seconds(1800)

    func check(_ stage: TaskStage, workItem: String, worktree: String, repo: RepositorySettings) async throws -> GateVerdict {
        let taskDocs = Workspace.taskDocs(workItem: workItem)
        // The agent wrote these files: read through TaskDocumentReader (no symbolic link, no FIFO
        // or device, at most 256 KiB), so a refusal's message never carries a foreign file's bytes.
        func document(_ name: String) async -> Result<String, TaskDocumentReader.Refusal> {
            await TaskDocumentReader.read("\(taskDocs)/\(name)", in: worktree)
        }
        switch stage {
        case .analysis:
            switch await document("spec.md") {
            case .success: return .pass("spec.md written")
            case .failure(let refusal): return .fail(refusal.description)
            }
        case .architecture:
            switch await document("design.md") {
            case .success: return .pass("design.md written")
            case .failure(let refusal): return .fail(refusal.description)
            }
        case .development:
            let commits = try await workspace.newCommits(repo, workItem: workItem)
            guard commits > 0 else { return .fail("no new commits on \(Workspace.branch(workItem: workItem)) compared with \(repo.defaultBranch)") }
            if let test = repo.testCommand {
                let (exit, output) = try await commands.run(test, in: worktree, timeout: testTimeout, check: false)
                guard exit == 0 else {
                    return .fail("test_command \(test.joined(separator: " ")) failed with exit \(exit):\n\(output.suffix(4000))")
                }
            }
            return .pass("\(commits) new commit(s)" + (repo.testCommand == nil ? "" : ", tests pass"))
        case .review:
            let review: String
            switch await document("review.md") {
            case .success(let text): review = text
            case .failure(let refusal): return .fail(refusal.description)
            }
            let verdict = review.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            switch verdict {
            case "APPROVE": return .pass("review approved")
            case "REQUEST_CHANGES": return .changesRequested(review)
            default: return .fail("the first line of review.md must be APPROVE or REQUEST_CHANGES, not '\(verdict.prefix(80))'")
            }
        case .merge, .deploy, .done:
            return .pass("no agent gate")
        }
    }
}
