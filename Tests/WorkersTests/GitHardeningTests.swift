import Foundation
import TestSupport
import XCTest

@testable import Workers

/// The orchestrator's own git never runs repository hooks or an fsmonitor that an agent could
/// plant in the shared bare clone (issue #9, item 7).
final class GitHardeningTests: XCTestCase {
    var root: URL!

    override func setUp() async throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("orch-githooks-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: root)
    }

    @discardableResult
    private func git(_ arguments: [String], in directory: URL) async throws -> String {
        let runner = CommandRunner(
            extra: [
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t",
            ], keepsHome: true)
        return try await runner.run(["git"] + arguments, in: directory.path).output
    }

    private func executable(_ path: URL, _ text: String) throws {
        try text.write(to: path, atomically: true, encoding: .utf8)
        chmod(path.path, 0o755)
    }

    /// A remote with one commit on main, and a workspace whose repository it is.
    private func remoteAndWorkspace() async throws -> (URL, Workspace, RepositorySettings) {
        let remote = try makeBareRemote(in: root, readme: "hello\n")
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: remote.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        return (remote, Workspace(root: root.appendingPathComponent("work").path), repo)
    }

    func testAGitLinkRewrittenInTheWorktreeIsNeverFollowed() async throws {
        let (remote, workspace, repo) = try await remoteAndWorkspace()
        let worktree = try await workspace.prepare(repo, workItem: "ORCH-3")
        // The agent makes a git directory of its own whose config runs a command as a filter, and
        // points the worktree's .git at it.
        let marker = root.appendingPathComponent("filter-ran").path
        try await git(["init", "--quiet", "--bare", worktree + "/.x"], in: root)
        let config = try String(contentsOfFile: worktree + "/.x/config", encoding: .utf8)
        try
            (config.replacingOccurrences(of: "bare = true", with: "bare = false")
            + "[filter \"f\"]\n\tclean = \"sh -c 'touch \(marker); cat'\"\n")
            .write(toFile: worktree + "/.x/config", atomically: true, encoding: .utf8)
        try "* filter=f\n".write(toFile: worktree + "/.gitattributes", atomically: true, encoding: .utf8)
        try "gitdir: .x\n".write(toFile: worktree + "/.git", atomically: true, encoding: .utf8)
        try "work\n".write(toFile: worktree + "/file.txt", atomically: true, encoding: .utf8)

        let committed = try await workspace.commitAll(repo, workItem: "ORCH-3", message: "ORCH-3 development")
        XCTAssertTrue(committed)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the agent's git directory was never used")
        try await workspace.push(repo, workItem: "ORCH-3")
        let pushed = try await git(["show", "orch/ORCH-3:file.txt"], in: remote)
        XCTAssertEqual(pushed, "work\n", "the commit went to the task branch through the real git directory")
    }

    func testHooksAndFsmonitorPlantedInTheCloneDoNotRun() async throws {
        let (_, workspace, repo) = try await remoteAndWorkspace()
        _ = try await workspace.prepare(repo, workItem: "ORCH-1")

        // What an agent with write access to its worktree's git directory could plant.
        let clone = URL(fileURLWithPath: workspace.clonePath(repo))
        let markers = root.appendingPathComponent("markers")
        try FileManager.default.createDirectory(at: markers, withIntermediateDirectories: true)
        let hooks = clone.appendingPathComponent("hooks")
        try FileManager.default.createDirectory(at: hooks, withIntermediateDirectories: true)
        for hook in ["post-checkout", "pre-commit", "commit-msg", "post-commit", "pre-push", "reference-transaction"] {
            try executable(hooks.appendingPathComponent(hook), "#!/bin/sh\ntouch \(markers.path)/\(hook)\n")
        }
        let monitor = clone.appendingPathComponent("fsmonitor.sh")
        try executable(monitor, "#!/bin/sh\ntouch \(markers.path)/fsmonitor\n")
        try await git(["config", "core.fsmonitor", monitor.path], in: clone)
        // The planted hook does run for a git without the orchestrator's settings: the test can
        // tell.
        let probe = root.appendingPathComponent("probe").path
        try await git(["worktree", "add", "--quiet", "--detach", probe, "origin/main"], in: clone)
        XCTAssertTrue(FileManager.default.fileExists(atPath: markers.appendingPathComponent("post-checkout").path))
        try FileManager.default.removeItem(at: markers)
        try FileManager.default.createDirectory(at: markers, withIntermediateDirectories: true)

        let worktree = try await workspace.prepare(repo, workItem: "ORCH-2")
        try "change\n".write(toFile: worktree + "/file.txt", atomically: true, encoding: .utf8)
        let committed = try await workspace.commitAll(repo, workItem: "ORCH-2", message: "ORCH-2 development")
        XCTAssertTrue(committed)
        try await workspace.push(repo, workItem: "ORCH-2")
        _ = try await workspace.mergeLocally(repo, workItem: "ORCH-2")

        let ran = try FileManager.default.contentsOfDirectory(atPath: markers.path)
        XCTAssertEqual(ran, [], "no planted hook or fsmonitor ran")
        XCTAssertEqual(
            GitRunner.hardened(["git", "status"]),
            [
                "git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "status",
            ])
    }
}
