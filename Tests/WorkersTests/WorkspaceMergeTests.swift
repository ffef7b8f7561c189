import Foundation
import Store
import TestSupport
import XCTest

@testable import Workers

/// The workspace's git against a real bare remote: the local merge and the task branch push.
final class WorkspaceMergeTests: XCTestCase {
    var root: URL!
    var remote: URL!
    var workspace: Workspace!

    override func setUp() async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("orch-ws-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        remote = try makeBareRemote(in: root)
        workspace = Workspace(root: root.appendingPathComponent("work").path)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: root)
    }

    private var repo: RepositorySettings {
        RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: remote.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
    }

    /// Commits `text` as `path` on the task branch and pushes it.
    private func work(_ workItem: String, _ path: String, _ text: String) async throws {
        let worktree = try await workspace.prepare(repo, workItem: workItem)
        let file = URL(fileURLWithPath: "\(worktree)/\(path)")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        try await workspace.commitAll(repo, workItem: workItem, message: "\(workItem) work")
        try await workspace.push(repo, workItem: workItem)
    }

    /// Pushes a commit to main from a clone of the remote.
    private func pushToMain(_ path: String, _ text: String) throws {
        let clone = root.appendingPathComponent("other-\(UUID().uuidString.prefix(6))")
        try runGit(["clone", "--quiet", remote.path, clone.path], in: root)
        let file = clone.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        try runGit(["add", "-A"], in: clone)
        try runGit(["commit", "--quiet", "-m", "main moves on"], in: clone)
        try runGit(["push", "--quiet", "origin", "HEAD:main"], in: clone)
    }

    private func mainHead() throws -> String {
        try runGit(["rev-parse", "main"], in: remote).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A retried merge (the first one's outcome was never recorded) finds the merge commit that
    /// brought the branch in, not the default branch's tip, which moved on meanwhile.
    func testARetriedLocalMergeRecordsItsOwnMergeCommit() async throws {
        try await work("ORCH-1", "src/a.txt", "a\n")
        let first = try await workspace.mergeLocally(repo, workItem: "ORCH-1")
        XCTAssertEqual(first, .merged(try mainHead()))
        try pushToMain("src/other.txt", "other\n")
        let again = try await workspace.mergeLocally(repo, workItem: "ORCH-1")
        let tip = try mainHead()
        XCTAssertEqual(again, first, "the same merge commit, not main's tip \(tip)")
    }

    /// A conflict merges nothing and says which files conflict.
    func testAConflictingMergePushesNothingAndNamesTheFiles() async throws {
        try await work("ORCH-2", "src/same.txt", "task's\n")
        try pushToMain("src/same.txt", "main's\n")
        let before = try mainHead()
        let result = try await workspace.mergeLocally(repo, workItem: "ORCH-2")
        XCTAssertEqual(result, .conflict("orch/ORCH-2 does not merge cleanly into main; conflicts in src/same.txt"))
        XCTAssertEqual(try mainHead(), before)
    }

    /// The task branch is replaced only while it is where the run started: an agent's rebase is
    /// pushed, a branch someone else moved meanwhile is not overwritten.
    func testThePushLeaseAllowsARebaseButNotOverwritingAMovedBranch() async throws {
        try await work("ORCH-3", "src/a.txt", "a\n")
        try pushToMain("src/b.txt", "b\n")
        // The "agent" rebases the branch onto the new main: not a fast-forward of the remote branch.
        let worktree = try await workspace.prepare(repo, workItem: "ORCH-3")
        let base = try await workspace.head(repo, workItem: "ORCH-3")
        try runGit(["fetch", "--quiet", remote.path, "main"], in: URL(fileURLWithPath: worktree))
        try runGit(["rebase", "--quiet", "FETCH_HEAD"], in: URL(fileURLWithPath: worktree))
        do {
            try await workspace.push(repo, workItem: "ORCH-3")
            XCTFail("a plain push of a rebased branch is refused")
        } catch {}
        try await workspace.push(repo, workItem: "ORCH-3", expecting: .at(base))
        let rebased = try await workspace.head(repo, workItem: "ORCH-3")
        XCTAssertEqual(
            try runGit(["rev-parse", "orch/ORCH-3"], in: remote).trimmingCharacters(in: .whitespacesAndNewlines),
            rebased)

        // A new run starts at the rebased head; someone moves the branch meanwhile: its push is refused.
        let moved = root.appendingPathComponent("mover")
        try runGit(["clone", "--quiet", "--branch", "orch/ORCH-3", remote.path, moved.path], in: root)
        try "theirs\n".write(to: moved.appendingPathComponent("theirs.txt"), atomically: true, encoding: .utf8)
        try runGit(["add", "-A"], in: moved)
        try runGit(["commit", "--quiet", "-m", "someone else"], in: moved)
        try runGit(["push", "--quiet", "origin", "HEAD:orch/ORCH-3"], in: moved)
        try "ours\n".write(toFile: "\(worktree)/ours.txt", atomically: true, encoding: .utf8)
        try await workspace.commitAll(repo, workItem: "ORCH-3", message: "ours")
        do {
            try await workspace.push(repo, workItem: "ORCH-3", expecting: .at(rebased))
            XCTFail("a branch moved by someone else is not overwritten")
        } catch {}
        let theirs = try runGit(["show", "orch/ORCH-3:theirs.txt"], in: remote)
        XCTAssertEqual(theirs, "theirs\n")
    }
}
