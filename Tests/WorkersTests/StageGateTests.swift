import Foundation
import Store
import TestSupport
import XCTest

@testable import Workers

/// The document gates read what the agent committed without trusting it: symbolic links, FIFOs,
/// devices and oversized files fail the gate promptly with a message that names the path and the
/// reason and carries none of the refused file's bytes.
final class StageGateTests: XCTestCase {
    var root: URL!
    var remote: URL!
    var workspace: Workspace!
    /// The task's worktree, prepared by the real `Workspace` on branch orch/ORCH-1.
    var worktree: String!
    /// The head the "run" started from: the gates judge what was committed after it.
    var base: String!
    let docs = "docs/tasks/ORCH-1"

    override func setUp() async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("orch-gate-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        remote = try makeBareRemote(in: root)
        workspace = Workspace(root: root.appendingPathComponent("work").path)
        worktree = try await workspace.prepare(repo, workItem: "ORCH-1")
        base = try await workspace.head(repo, workItem: "ORCH-1")
        try FileManager.default.createDirectory(atPath: "\(worktree!)/\(docs)", withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: root)
    }

    private var repo: RepositorySettings {
        var repo = RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: remote.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        repo.testCommand = testCommand
        return repo
    }

    var testCommand: [String]?

    /// Commits what the "agent" left, as the stage runner does before the gate.
    private func commit(_ message: String = "agent run") async throws {
        try await workspace.commitAll(repo, workItem: "ORCH-1", message: message)
    }

    private func check(_ stage: TaskStage) async throws -> GateVerdict {
        try await StageGate(workspace: workspace).check(
            stage, workItem: "ORCH-1", worktree: worktree, repo: repo, base: base)
    }

    /// The analysis gate's verdict, which must come within `limit` whatever spec.md is.
    private func analysisVerdict(within limit: Duration = .seconds(5)) async throws -> GateVerdict {
        try await commit()
        let gate = StageGate(workspace: workspace)
        let (worktree, repo, base) = (self.worktree!, self.repo, self.base!)
        let clock = ContinuousClock()
        let started = clock.now
        let verdict = try await withThrowingTaskGroup(of: GateVerdict?.self) { group in
            group.addTask {
                try await gate.check(.analysis, workItem: "ORCH-1", worktree: worktree, repo: repo, base: base)
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let elapsed = clock.now - started
        return try XCTUnwrap(verdict, "the gate answered within \(limit) (took \(elapsed))")
    }

    /// The analysis gate's failure message (the test fails if it passed).
    private func analysisFailure() async throws -> String {
        let verdict = try await analysisVerdict()
        return try XCTUnwrap(failure(verdict), "\(verdict)")
    }

    private func failure(_ verdict: GateVerdict) -> String? {
        if case .fail(let message) = verdict { return message }
        return nil
    }

    private func linkSpec(to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: "\(worktree!)/\(docs)/spec.md", withDestinationPath: target)
    }

    func testASpecLinkedToDevZeroFailsPromptly() async throws {
        try linkSpec(to: "/dev/zero")
        let message = try await analysisFailure()
        XCTAssertTrue(message.hasPrefix("\(docs)/spec.md is refused: it is a symbolic link"), message)
    }

    func testASpecLinkedToAFIFOFailsPromptly() async throws {
        let fifo = root.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        try linkSpec(to: fifo)
        let message = try await analysisFailure()
        XCTAssertTrue(message.contains("symbolic link"), message)
    }

    func testASpecThatIsAFIFOItselfFailsPromptly() async throws {
        XCTAssertEqual(mkfifo("\(worktree!)/\(docs)/spec.md", 0o600), 0)
        let message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is not a regular file (it is a FIFO)")
    }

    func testASpecLinkedOutsideTheWorktreeNeverLeaksTheTarget() async throws {
        let secret = root.appendingPathComponent("credentials").path
        try "SECRET-TOKEN=abc123\n".write(toFile: secret, atomically: true, encoding: .utf8)
        try linkSpec(to: secret)
        let message = try await analysisFailure()
        XCTAssertFalse(message.contains("SECRET-TOKEN"), message)
        XCTAssertFalse(message.contains("abc123"), message)
        XCTAssertTrue(message.contains("symbolic link"), message)
    }

    func testADirectoryOnThePathThatIsALinkIsRefused() async throws {
        let outside = root.appendingPathComponent("outside/ORCH-1")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try "SECRET-TOKEN\n".write(to: outside.appendingPathComponent("spec.md"), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(worktree!)/\(docs)")
        try FileManager.default.createSymbolicLink(atPath: "\(worktree!)/\(docs)", withDestinationPath: outside.path)
        let message = try await analysisFailure()
        XCTAssertEqual(
            message,
            "\(docs)/spec.md is refused: \(docs) is a symbolic link (task documents must be regular files "
                + "committed in the worktree; symbolic links are never followed)")
    }

    func testASpecOverTheLimitFailsWithItsSize() async throws {
        let spec = URL(fileURLWithPath: "\(worktree!)/\(docs)/spec.md")
        try Data(repeating: UInt8(ascii: "a"), count: 300_000).write(to: spec)
        let message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is 300000 bytes; the limit is 262144")
        XCTAssertEqual(TaskDocumentReader.maximumBytes, 256 * 1024)
    }

    func testASpecThatIsADirectoryIsNotARegularFile() async throws {
        try FileManager.default.createDirectory(
            atPath: "\(worktree!)/\(docs)/spec.md", withIntermediateDirectories: true)
        let message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is not a regular file (it is a directory)")
    }

    func testMissingEmptyAndNonUTF8SpecsFail() async throws {
        let path = "\(worktree!)/\(docs)/spec.md"
        var message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is missing or empty")
        try " \n\t\n".write(toFile: path, atomically: true, encoding: .utf8)
        message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is empty")
        try Data([0x23, 0x20, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: path))
        message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is not valid UTF-8 text")
    }

    func testAGoodSpecPassesAndAReviewIsReadInFull() async throws {
        try "# Spec\n\nDo the thing.\n".write(toFile: "\(worktree!)/\(docs)/spec.md", atomically: true, encoding: .utf8)
        let verdict = try await analysisVerdict()
        XCTAssertEqual(verdict, .pass("spec.md written"))
        let review = "REQUEST_CHANGES\n\nName things better.\n"
        try review.write(toFile: "\(worktree!)/\(docs)/review.md", atomically: true, encoding: .utf8)
        try await commit()
        let reviewed = try await check(.review)
        XCTAssertEqual(reviewed, .changesRequested(review))
    }

    func testAReviewLinkedToAFileOutsideIsRefusedWithoutItsContent() async throws {
        let secret = root.appendingPathComponent("review-secret").path
        try "APPROVE SECRET-TOKEN\n".write(toFile: secret, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: "\(worktree!)/\(docs)/review.md", withDestinationPath: secret)
        try await commit()
        let verdict = try await check(.review)
        let message = try XCTUnwrap(failure(verdict))
        XCTAssertFalse(message.contains("SECRET-TOKEN"), message)
        XCTAssertTrue(message.hasPrefix("\(docs)/review.md is refused"), message)
    }

    /// StagePrompt reads the same documents synchronously (through `readBlocking`): a link to
    /// /dev/zero or to a FIFO is refused there at once too.
    func testTheSynchronousReadUsedByThePromptRefusesSpecialFilesAtOnce() throws {
        let fifo = root.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        try linkSpec(to: "/dev/zero")
        try FileManager.default.createSymbolicLink(atPath: "\(worktree!)/\(docs)/design.md", withDestinationPath: fifo)
        let limit = TaskDocumentReader.maximumBytes
        let spec = TaskDocumentReader.readBlocking("\(docs)/spec.md", in: worktree!, limit: limit)
        XCTAssertEqual(spec, .failure(.symbolicLink(path: "\(docs)/spec.md", component: "\(docs)/spec.md")))
        let design = TaskDocumentReader.readBlocking("\(docs)/design.md", in: worktree!, limit: limit)
        XCTAssertEqual(design, .failure(.symbolicLink(path: "\(docs)/design.md", component: "\(docs)/design.md")))
        XCTAssertEqual(
            TaskDocumentReader.readBlocking("../worktree/\(docs)/spec.md", in: worktree!, limit: limit),
            .failure(.unreadable(path: "../worktree/\(docs)/spec.md", reason: "not a plain relative path")))
    }

    // MARK: The work of this run, as committed

    private func write(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: "\(worktree!)/\(path)")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// A spec an earlier run committed and pushed does not pass for a run that wrote nothing.
    func testASpecLeftByAnEarlierRunDoesNotPass() async throws {
        try write("# Spec\n", to: "\(docs)/spec.md")
        try await commit("earlier run")
        base = try await workspace.head(repo, workItem: "ORCH-1")
        let verdict = try await check(.analysis)
        XCTAssertEqual(
            verdict, .fail("\(docs)/spec.md was not written by this run: it is unchanged since \(base.prefix(12))"))
        try write("# Spec, revised\n", to: "\(docs)/spec.md")
        try await commit()
        let revised = try await check(.analysis)
        XCTAssertEqual(revised, .pass("spec.md written"))
    }

    /// A git-ignored spec exists in the worktree but never reaches the branch: it does not pass.
    func testAGitIgnoredSpecDoesNotPass() async throws {
        try write("docs/tasks/*/spec.md\n", to: ".gitignore")
        try write("# Spec\n", to: "\(docs)/spec.md")
        try await commit()
        let verdict = try await check(.analysis)
        XCTAssertEqual(
            verdict,
            .fail(
                "\(docs)/spec.md is not committed as a regular file (is it git-ignored?): the next stage would never see it"
            ))
    }

    /// Development needs commits of this run outside docs/tasks: the spec and design of earlier
    /// stages, or a run that only touched task documents, do not count.
    func testDevelopmentNeedsThisRunsCommitsOutsideTheTaskDocuments() async throws {
        try write("# Spec\n", to: "\(docs)/spec.md")
        try await commit("analysis")
        base = try await workspace.head(repo, workItem: "ORCH-1")
        var verdict = try await check(.development)
        guard case .fail(let message) = verdict else { return XCTFail("\(verdict)") }
        XCTAssertTrue(
            message.hasPrefix("this run made no commits changing anything outside docs/tasks/ORCH-1/"), message)
        try write("notes\n", to: "\(docs)/notes.md")
        try await commit("development: notes only")
        verdict = try await check(.development)
        XCTAssertEqual(verdict, .fail(message), "task documents alone are not development")
        try write("code\n", to: "src/orch_1.txt")
        try await commit("development")
        verdict = try await check(.development)
        XCTAssertEqual(verdict, .pass("1 new commit(s)"))
        testCommand = ["false"]
        verdict = try await check(.development)
        guard case .fail(let failed) = verdict else { return XCTFail("\(verdict)") }
        XCTAssertTrue(failed.hasPrefix("test_command false failed with exit 1"), failed)
    }

    /// A reviewer's own edits are tested before merge: failing tests send the task back to
    /// development with the failure; passing ones approve.
    func testAReviewersEditsAreTested() async throws {
        try write("APPROVE\n\nLooks good; fixed a typo.\n", to: "\(docs)/review.md")
        try write("fixed\n", to: "src/orch_1.txt")
        try await commit("review")
        testCommand = ["sh", "-c", "echo tests broke; exit 3"]
        var verdict = try await check(.review)
        guard case .changesRequested(let feedback) = verdict else { return XCTFail("\(verdict)") }
        XCTAssertTrue(feedback.contains("its own edits fail the tests"), feedback)
        XCTAssertTrue(feedback.contains("tests broke"), feedback)
        testCommand = ["true"]
        verdict = try await check(.review)
        XCTAssertEqual(verdict, .pass("review approved with 1 commit(s) of edits, tests pass"))
    }
}
