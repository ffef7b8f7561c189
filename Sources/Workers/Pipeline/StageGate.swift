import Foundation
import Store

/// What a stage's gate decided (docs/architecture.md, The pipeline).
public enum GateVerdict: Sendable, Equatable {
    case pass(String)
    /// The stage is retried with this message as feedback (up to a limit).
    case fail(String)
    /// Review asked for changes: back to development with the review as feedback.
    case changesRequested(String)
}

/// The default gates of the agent stages, judging the work of one run — the commits after `base`,
/// the head the run started from, as committed (never what an earlier stage or run left, nor a
/// file git ignores, which the next stage would never see):
///
/// - analysis → `spec.md`, architecture → `design.md`: committed as a regular file, written or
///   changed by this run, and readable (`TaskDocumentReader`'s rules);
/// - development → commits by this run that change something outside `docs/tasks/`,
///   `test_command` passing, and then the coverage gate (`StageGate+Coverage.swift`) when it is
///   on and the repository has a `coverage_command`;
/// - review → `review.md` of this run whose first line is `APPROVE` (or `REQUEST_CHANGES`); a
///   reviewer that also changed code outside `docs/tasks/` has its edits tested: `test_command`
///   must pass, else the task goes back to development with the failure as feedback.
struct StageGate: Sendable {
    let workspace: any TaskWorkspace
    /// Runs `test_command` (and `coverage_command`) as the agents' user when one is configured.
    var commands = CommandRunner()
    var testTimeout: Duration = .seconds(1800)
    /// Baselines and measurements of the coverage gate; nil when the gate is off
    /// (`ORCH_COVERAGE_GATE_ENABLED=0`).
    var coverage: CoverageStore?

    func check(
        _ stage: TaskStage, workItem: String, worktree: String, repo: RepositorySettings, base: String
    ) async throws -> GateVerdict {
        let taskDocs = Workspace.taskDocs(workItem: workItem)
        // The agent wrote these files: read through TaskDocumentReader (no symbolic link, no FIFO
        // or device, at most 256 KiB), so a refusal's message never carries a foreign file's bytes;
        // then make sure it is the committed file, and this run's.
        func document(_ name: String) async throws -> Result<String, DocumentRefusal> {
            let path = "\(taskDocs)/\(name)"
            switch await TaskDocumentReader.read(path, in: worktree) {
            case .failure(let refusal): return .failure(.unreadable(refusal))
            case .success(let text):
                let committed = try await workspace.committedFile(repo, workItem: workItem, path: path, since: base)
                guard committed.tracked else { return .failure(.notCommitted(path: path)) }
                guard committed.changed else { return .failure(.unchanged(path: path, base: base)) }
                return .success(text)
            }
        }
        switch stage {
        case .analysis:
            switch try await document("spec.md") {
            case .success: return .pass("spec.md written")
            case .failure(let refusal): return .fail(refusal.description)
            }
        case .architecture:
            switch try await document("design.md") {
            case .success: return .pass("design.md written")
            case .failure(let refusal): return .fail(refusal.description)
            }
        case .development:
            let commits = try await workspace.commitsOutsideTaskDocs(repo, workItem: workItem, since: base)
            guard commits > 0 else {
                return .fail(
                    "this run made no commits changing anything outside \(Workspace.taskDocs(workItem: workItem))/ "
                        + "on \(Workspace.branch(workItem: workItem)) (since \(base.prefix(12)))")
            }
            if let failure = try await testsFail(repo, in: worktree) { return .fail(failure) }
            let passed = "\(commits) new commit(s)" + (repo.testCommand == nil ? "" : ", tests pass")
            switch try await coverageVerdict(repo, workItem: workItem, in: worktree) {
            case .fail(let failure)?: return .fail(failure)
            case .pass(let measured)?: return .pass("\(passed), \(measured)")
            case nil: return .pass(passed)
            }
        case .review:
            let review: String
            switch try await document("review.md") {
            case .success(let text): review = text
            case .failure(let refusal): return .fail(refusal.description)
            }
            let verdict =
                review.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            switch verdict {
            case "APPROVE":
                // What the reviewer changed goes to merge next: it is tested like development's.
                let edits = try await workspace.commitsOutsideTaskDocs(repo, workItem: workItem, since: base)
                guard edits > 0 else { return .pass("review approved") }
                if let failure = try await testsFail(repo, in: worktree) {
                    return .changesRequested(
                        "The reviewer approved but its own edits fail the tests; fix them.\n\n\(failure)")
                }
                return .pass(
                    "review approved with \(edits) commit(s) of edits" + (repo.testCommand == nil ? "" : ", tests pass")
                )
            case "REQUEST_CHANGES": return .changesRequested(review)
            default:
                return .fail(
                    "the first line of review.md must be APPROVE or REQUEST_CHANGES, not '\(verdict.prefix(80))'")
            }
        case .merge, .deploy, .done:
            return .pass("no agent gate")
        }
    }

    /// `test_command`'s failure, or nil when it passes or there is none.
    private func testsFail(_ repo: RepositorySettings, in worktree: String) async throws -> String? {
        guard let test = repo.testCommand else { return nil }
        let (exit, output) = try await commands.run(test, in: worktree, timeout: testTimeout, check: false)
        guard exit != 0 else { return nil }
        return "test_command \(test.joined(separator: " ")) failed with exit \(exit):\n\(output.suffix(4000))"
    }
}

/// Why a task document does not pass its gate.
enum DocumentRefusal: Error, CustomStringConvertible {
    /// The file itself is refused (missing, a link, too large, …).
    case unreadable(TaskDocumentReader.Refusal)
    /// It exists in the worktree but is not committed (git ignores it): the next stage would never see it.
    case notCommitted(path: String)
    /// It is the file an earlier run left: this run did not write it.
    case unchanged(path: String, base: String)

    var description: String {
        switch self {
        case .unreadable(let refusal): return refusal.description
        case .notCommitted(let path):
            return "\(path) is not committed as a regular file (is it git-ignored?): the next stage would never see it"
        case .unchanged(let path, let base):
            return "\(path) was not written by this run: it is unchanged since \(base.prefix(12))"
        }
    }
}
