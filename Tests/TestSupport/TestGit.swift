import Foundation

/// Runs git (argv) with a fixed identity; throws with its output when it fails.
@discardableResult
public func runGit(_ arguments: [String], in directory: URL) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git"] + arguments
    process.currentDirectoryURL = directory
    process.environment = ProcessInfo.processInfo.environment.merging(
        ["GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"]) {
            $1
        }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestSetupError("git \(arguments.joined(separator: " ")) failed: \(output)")
    }
    return output
}

/// A bare repository `<root>/remote.git` whose main branch has one commit (a README.md holding
/// `readme`), standing in for the Gitea remote.
public func makeBareRemote(in root: URL, readme: String = "# Demo project\n") throws -> URL {
    let remote = root.appendingPathComponent("remote.git")
    let seed = root.appendingPathComponent("seed")
    try FileManager.default.createDirectory(at: seed, withIntermediateDirectories: true)
    try runGit(["init", "--quiet", "--bare", "--initial-branch=main", remote.path], in: root)
    try runGit(["init", "--quiet", "--initial-branch=main"], in: seed)
    try readme.write(to: seed.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
    try runGit(["add", "-A"], in: seed)
    try runGit(["commit", "--quiet", "-m", "initial"], in: seed)
    try runGit(["push", "--quiet", remote.path, "main"], in: seed)
    return remote
}
