import Foundation
import Store
import XCTest

@testable import Workers

/// The document gates read what the agent committed without trusting it: symbolic links, FIFOs,
/// devices and oversized files fail the gate promptly with a message that names the path and the
/// reason and carries none of the refused file's bytes.
final class StageGateTests: XCTestCase {
    var root: URL!
    var worktree: String { root.appendingPathComponent("worktree").path }
    let docs = "docs/tasks/ORCH-1"

    override func setUp() async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("orch-gate-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            atPath: "\(root.path)/worktree/docs/tasks/ORCH-1", withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: root)
    }

    private var repo: RepositorySettings {
        RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: "/nonexistent", defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
    }

    /// The analysis gate's verdict, which must come within `limit` whatever spec.md is.
    private func analysisVerdict(within limit: Duration = .seconds(5)) async throws -> GateVerdict {
        let gate = StageGate(workspace: Workspace(root: root.path))
        let (worktree, repo) = (self.worktree, self.repo)
        let clock = ContinuousClock()
        let started = clock.now
        let verdict = try await withThrowingTaskGroup(of: GateVerdict?.self) { group in
            group.addTask { try await gate.check(.analysis, workItem: "ORCH-1", worktree: worktree, repo: repo) }
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
        try FileManager.default.createSymbolicLink(atPath: "\(worktree)/\(docs)/spec.md", withDestinationPath: target)
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
        XCTAssertEqual(mkfifo("\(worktree)/\(docs)/spec.md", 0o600), 0)
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
        try FileManager.default.removeItem(atPath: "\(worktree)/\(docs)")
        try FileManager.default.createSymbolicLink(atPath: "\(worktree)/\(docs)", withDestinationPath: outside.path)
        let message = try await analysisFailure()
        XCTAssertEqual(
            message,
            "\(docs)/spec.md is refused: \(docs) is a symbolic link (task documents must be regular files "
                + "committed in the worktree; symbolic links are never followed)")
    }

    func testASpecOverTheLimitFailsWithItsSize() async throws {
        let spec = URL(fileURLWithPath: "\(worktree)/\(docs)/spec.md")
        try Data(repeating: UInt8(ascii: "a"), count: 300_000).write(to: spec)
        let message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is 300000 bytes; the limit is 262144")
        XCTAssertEqual(TaskDocumentReader.maximumBytes, 256 * 1024)
    }

    func testASpecThatIsADirectoryIsNotARegularFile() async throws {
        try FileManager.default.createDirectory(
            atPath: "\(worktree)/\(docs)/spec.md", withIntermediateDirectories: true)
        let message = try await analysisFailure()
        XCTAssertEqual(message, "\(docs)/spec.md is not a regular file (it is a directory)")
    }

    func testMissingEmptyAndNonUTF8SpecsFail() async throws {
        let path = "\(worktree)/\(docs)/spec.md"
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
        try "# Spec\n\nDo the thing.\n".write(toFile: "\(worktree)/\(docs)/spec.md", atomically: true, encoding: .utf8)
        let verdict = try await analysisVerdict()
        XCTAssertEqual(verdict, .pass("spec.md written"))
        let review = "REQUEST_CHANGES\n\nName things better.\n"
        try review.write(toFile: "\(worktree)/\(docs)/review.md", atomically: true, encoding: .utf8)
        let gate = StageGate(workspace: Workspace(root: root.path))
        let reviewed = try await gate.check(.review, workItem: "ORCH-1", worktree: worktree, repo: repo)
        XCTAssertEqual(reviewed, .changesRequested(review))
    }

    func testAReviewLinkedToAFileOutsideIsRefusedWithoutItsContent() async throws {
        let secret = root.appendingPathComponent("review-secret").path
        try "APPROVE SECRET-TOKEN\n".write(toFile: secret, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(worktree)/\(docs)/review.md", withDestinationPath: secret)
        let gate = StageGate(workspace: Workspace(root: root.path))
        let verdict = try await gate.check(.review, workItem: "ORCH-1", worktree: worktree, repo: repo)
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
        try FileManager.default.createSymbolicLink(atPath: "\(worktree)/\(docs)/design.md", withDestinationPath: fifo)
        let limit = TaskDocumentReader.maximumBytes
        let spec = TaskDocumentReader.readBlocking("\(docs)/spec.md", in: worktree, limit: limit)
        XCTAssertEqual(spec, .failure(.symbolicLink(path: "\(docs)/spec.md", component: "\(docs)/spec.md")))
        let design = TaskDocumentReader.readBlocking("\(docs)/design.md", in: worktree, limit: limit)
        XCTAssertEqual(design, .failure(.symbolicLink(path: "\(docs)/design.md", component: "\(docs)/design.md")))
        XCTAssertEqual(
            TaskDocumentReader.readBlocking("../worktree/\(docs)/spec.md", in: worktree, limit: limit),
            .failure(.unreadable(path: "../worktree/\(docs)/spec.md", reason: "not a plain relative path")))
    }
}
