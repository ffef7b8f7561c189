import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The `HOME` an agent and a task's commands get: a directory of the task's own,
/// `<ORCH_WORKDIR>/homes/<WORK-ITEM>`, created on demand, instead of the orchestrator's, whose
/// dotfiles (git credentials, ssh keys, CLI tokens) an agent must not read or plant files in.
public enum TaskHome {
    /// The home of a work item under the workspace root.
    public static func path(root: String, workItem: String) -> String { "\(root)/homes/\(workItem)" }

    /// The home of the task whose worktree is `directory` — `<root>/worktrees/<repo>/<WI>`, the
    /// `Workspace` layout — or nil for any other directory.
    static func path(forWorktree directory: String) -> String? {
        let parts = URL(fileURLWithPath: directory).standardizedFileURL.pathComponents
        guard parts.count >= 4, parts[parts.count - 3] == "worktrees", let workItem = parts.last,
            workItem.range(of: "^[A-Z][A-Z0-9]*-[0-9]+$", options: .regularExpression) != nil
        else { return nil }
        return path(root: NSString.path(withComponents: Array(parts.dropLast(3))), workItem: workItem)
    }

    /// The variables that point a child at `home`.
    static func environment(home: String) -> [String: String] {
        ["HOME": home, "XDG_CONFIG_HOME": home + "/.config"]
    }

    /// Creates the home (and its `.config`), and hands it to `owner` when the child runs as
    /// another user. Its `.gitconfig` trusts every repository: the worktree's git directory
    /// belongs to the orchestrator, and git refuses a repository owned by another user otherwise.
    static func prepare(_ home: String, owner: ChildIdentity?) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: home + "/.config", withIntermediateDirectories: true)
        let gitconfig = home + "/.gitconfig"
        if owner != nil, !manager.fileExists(atPath: gitconfig) {
            try "[safe]\n\tdirectory = *\n".write(toFile: gitconfig, atomically: true, encoding: .utf8)
        }
        if let owner {
            chmod(home, 0o700)
            try Ownership.change(home, to: owner.userID, owner.groupID)
        }
    }
}
