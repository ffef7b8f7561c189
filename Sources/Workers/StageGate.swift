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
    let commands = CommandRunner()
    var testTimeout: Duration = .seconds(1800)

    func check(_ stage: TaskStage, workItem: String, worktree: String, repo: RepositorySettings) async throws -> GateVerdict {
        let taskDocs = Workspace.taskDocs(workItem: workItem)
        func document(_ name: String) -> String? {
            (try? String(contentsOfFile: "\(worktree)/\(taskDocs)/\(name)", encoding: .utf8))
                .flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        }
        switch stage {
        case .analysis:
            return document("spec.md") != nil ? .pass("spec.md written") : .fail("\(taskDocs)/spec.md is missing or empty")
        case .architecture:
            return document("design.md") != nil ? .pass("design.md written") : .fail("\(taskDocs)/design.md is missing or empty")
        case .development:
            let commits = try await workspace.newCommits(worktree: worktree, repo: repo)
            guard commits > 0 else { return .fail("no new commits on \(Workspace.branch(workItem: workItem)) compared with \(repo.defaultBranch)") }
            if let test = repo.testCommand {
                let (exit, output) = try await commands.run(test, in: worktree, timeout: testTimeout, check: false)
                guard exit == 0 else {
                    return .fail("test_command \(test.joined(separator: " ")) failed with exit \(exit):\n\(output.suffix(4000))")
                }
            }
            return .pass("\(commits) new commit(s)" + (repo.testCommand == nil ? "" : ", tests pass"))
        case .review:
            guard let review = document("review.md") else { return .fail("\(taskDocs)/review.md is missing or empty") }
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
