import Foundation
import Store
import TestSupport
import XCTest

@testable import Workers

#if canImport(Glibc)
import Glibc
#endif

/// What a killed replica leaves in its workspace never strands a task (issue #10, item 11): the
/// temporary worktree of a local merge is swept, and stale git lock files are removed before a
/// task's worktree is prepared, while locks that may be live (another task's agent) stay.
final class WorkspaceLeftoversTests: DatabaseTestCase {
    var root: URL!

    override func setUp() async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-leftovers-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try await super.setUp()
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: root)
        try await super.tearDown()
    }

    /// A remote with one commit on main, and a workspace whose repository it is.
    private func remoteAndWorkspace() throws -> (URL, Workspace, RepositorySettings) {
        let remote = try makeBareRemote(in: root, readme: "hello\n")
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: remote.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        return (remote, Workspace(root: root.appendingPathComponent("work").path), repo)
    }

    private func clone(_ workspace: Workspace, _ repo: RepositorySettings) -> URL {
        URL(fileURLWithPath: workspace.clonePath(repo))
    }

    /// Creates an empty file at `path` (and its folder) last modified `age` seconds ago.
    private func plant(_ path: String, age: TimeInterval = 0) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: path)
    }

    /// Sets a symbolic link's own modification time (not its target's).
    private func age(link path: String, by seconds: TimeInterval) {
        let time = timespec(tv_sec: Int(Date().timeIntervalSince1970 - seconds), tv_nsec: 0)
        var times = [time, time]
        XCTAssertEqual(utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW), 0)
    }

    // MARK: Merge worktrees

    func testAMergeWorktreeLeftByAKilledMergeIsSweptAndUnregistered() async throws {
        let (_, workspace, repo) = try remoteAndWorkspace()
        let taskWorktree = try await workspace.prepare(repo, workItem: "ORCH-1")
        let clone = clone(workspace, repo)
        // What `mergeLocally` had done when the replica was killed: its worktree added, not removed.
        let merging = workspace.mergeWorktreesDirectory + "/merge-0A1B2C3D"
        try runGit(["worktree", "add", "--quiet", "--detach", merging, "origin/main"], in: clone)
        XCTAssertTrue(try runGit(["worktree", "list", "--porcelain"], in: clone).contains(merging))
        // A repository folder whose owner happens to start with "merge-" is not a merge worktree.
        let lookalike = workspace.mergeWorktreesDirectory + "/merge-co__tools"
        try FileManager.default.createDirectory(atPath: lookalike, withIntermediateDirectories: true)

        let sweeper = WorkspaceSweeper(workspace: workspace, repos: [repo], pool: database.pool, logger: testLogger)
        await sweeper.sweep()

        XCTAssertFalse(FileManager.default.fileExists(atPath: merging), "the merge worktree is removed")
        let list = try runGit(["worktree", "list", "--porcelain"], in: clone)
        XCTAssertFalse(list.contains("merge-"), "and no longer registered in the clone: \(list)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: clone.path + "/worktrees/merge-0A1B2C3D"))
        XCTAssertTrue(list.contains(taskWorktree), "a task's worktree stays")
        XCTAssertTrue(FileManager.default.fileExists(atPath: taskWorktree))
        XCTAssertTrue(FileManager.default.fileExists(atPath: lookalike))
    }

    func testAMergeFolderWithoutRegistrationIsRemovedOnlyOnceOld() async throws {
        let (_, workspace, _) = try remoteAndWorkspace()
        let old = workspace.mergeWorktreesDirectory + "/merge-00000001"
        let young = workspace.mergeWorktreesDirectory + "/merge-00000002"
        for folder in [old, young] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: old)

        let removed = workspace.removeOrphanMergeFolders(olderThan: WorkspaceSweeper.orphanMergeAge)

        XCTAssertEqual(removed, [old])
        XCTAssertFalse(FileManager.default.fileExists(atPath: old))
        XCTAssertTrue(FileManager.default.fileExists(atPath: young), "a merge might still be adding it")
    }

    func testSweepsNeverRemoveTheWorktreeOfAMergeThatIsRunning() async throws {
        let (_, workspace, repo) = try remoteAndWorkspace()
        _ = try await workspace.prepare(repo, workItem: "ORCH-4")
        try "change\n".write(
            toFile: workspace.worktreePath(repo, workItem: "ORCH-4") + "/change.txt", atomically: true, encoding: .utf8)
        try await workspace.commitAll(repo, workItem: "ORCH-4", message: "ORCH-4 development")
        try await workspace.push(repo, workItem: "ORCH-4")
        let sweeper = WorkspaceSweeper(workspace: workspace, repos: [repo], pool: database.pool, logger: testLogger)
        // Merges (the second and third find the branch merged) while the sweep runs without pause.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    await sweeper.sweep()
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            for _ in 0..<3 { _ = try await workspace.mergeLocally(repo, workItem: "ORCH-4") }
            group.cancelAll()
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: workspace.mergeWorktreesDirectory).filter {
            $0.hasPrefix("merge-")
        }
        XCTAssertEqual(left, [])
    }

    // MARK: Lock files

    func testStaleLocksOfAKilledGitNoLongerStopPrepare() async throws {
        let (remote, workspace, repo) = try remoteAndWorkspace()
        _ = try await workspace.prepare(repo, workItem: "ORCH-2")
        _ = try await workspace.prepare(repo, workItem: "ORCH-9")
        let clone = clone(workspace, repo).path
        // Main moves on, so the next fetch must update the remote-tracking ref.
        let seed = root.appendingPathComponent("seed")
        try "more\n".write(to: seed.appendingPathComponent("more.txt"), atomically: true, encoding: .utf8)
        try runGit(["add", "-A"], in: seed)
        try runGit(["commit", "--quiet", "-m", "more"], in: seed)
        try runGit(["push", "--quiet", remote.path, "main"], in: seed)

        // Left by git killed in ORCH-2's run: its index and branch locks (just now).
        try plant(clone + "/worktrees/ORCH-2/index.lock")
        try plant(clone + "/refs/heads/orch/ORCH-2.lock")
        // Left by a git killed long ago: a remote-tracking ref lock.
        try plant(clone + "/refs/remotes/origin/main.lock", age: 11 * 60)
        // Possibly live: ORCH-9's agent is committing right now.
        try plant(clone + "/worktrees/ORCH-9/index.lock")
        try plant(clone + "/refs/heads/orch/ORCH-9.lock")
        // Planted by an agent: links, which are never followed, and what they point at.
        let outside = root.appendingPathComponent("outside").path
        try plant(outside + "/victim.lock", age: 3600)
        try FileManager.default.createSymbolicLink(atPath: clone + "/trap", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(
            atPath: clone + "/old.lock", withDestinationPath: outside + "/victim.lock")
        age(link: clone + "/old.lock", by: 3600)

        // Plain git fails on these locks as the workspace's did (each fetch, then each prepare).
        XCTAssertThrowsError(try runGit(["fetch", "--quiet", "origin"], in: URL(fileURLWithPath: clone))) { error in
            XCTAssertTrue("\(error)".contains("main.lock"), "\(error)")
        }

        let worktree = try await workspace.prepare(repo, workItem: "ORCH-2")

        XCTAssertEqual(
            try runGit(["rev-parse", "HEAD"], in: URL(fileURLWithPath: worktree)),
            try runGit(["rev-parse", "main"], in: remote))
        try "work\n".write(toFile: worktree + "/work.txt", atomically: true, encoding: .utf8)
        let committed = try await workspace.commitAll(repo, workItem: "ORCH-2", message: "ORCH-2 development")
        XCTAssertTrue(committed)
        for live in ["/worktrees/ORCH-9/index.lock", "/refs/heads/orch/ORCH-9.lock"] {
            XCTAssertTrue(
                FileManager.default.fileExists(atPath: clone + live), "another task's young lock stays: \(live)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: clone + "/refs/remotes/origin/main.lock"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: clone + "/refs/heads/orch/ORCH-2.lock"))
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: outside + "/victim.lock"), "nothing is removed through a link")
        XCTAssertNotNil(
            try? FileManager.default.destinationOfSymbolicLink(atPath: clone + "/old.lock"), "a link is never removed")
    }

    /// An agent killed in the middle of its own `git commit` leaves `index.lock`: the commit of
    /// what it left (or the patch of a failed run) removes the task's own stale locks first, while
    /// another task's young lock stays.
    func testATaskLockLeftInTheWorktreeDoesNotStopItsCommit() async throws {
        let (_, workspace, repo) = try remoteAndWorkspace()
        let worktree = try await workspace.prepare(repo, workItem: "ORCH-5")
        let clone = clone(workspace, repo).path
        try "work\n".write(toFile: worktree + "/work.txt", atomically: true, encoding: .utf8)
        try plant(clone + "/worktrees/ORCH-5/index.lock")
        try FileManager.default.createDirectory(atPath: clone + "/worktrees/ORCH-6", withIntermediateDirectories: true)
        try plant(clone + "/worktrees/ORCH-6/index.lock")
        XCTAssertEqual(workspace.removeStaleLocks(repo), [], "young locks stay unless they are the task's own")

        let committed = try await workspace.commitAll(repo, workItem: "ORCH-5", message: "ORCH-5 development")
        XCTAssertTrue(committed)
        XCTAssertFalse(FileManager.default.fileExists(atPath: clone + "/worktrees/ORCH-5/index.lock"))
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: clone + "/worktrees/ORCH-6/index.lock"), "another task's lock stays")
    }
}
