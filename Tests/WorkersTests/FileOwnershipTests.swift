import Foundation
import Logging
import Store
import Synchronization
import TestSupport
import XCTest

@testable import Workers

#if canImport(Glibc)
import Glibc
#endif

/// The file-ownership check against real files and the real database: entries handed to another
/// uid (65534, nobody) are found, named and counted, the healing command is printed, a scan is
/// reused within its TTL unless forced, the opt-in chown gives them back only when allowed and
/// privileged, the startup check says what it found in one line and alerts, and `prepare` fails
/// with the healing command when git refuses a clone that changed hands.
final class FileOwnershipTests: DatabaseTestCase {
    static let nobody: UInt32 = 65534
    var root: URL!
    var workdir: String { root.appendingPathComponent("work").path }

    override func setUp() async throws {
        try XCTSkipUnless(geteuid() == 0, "handing files to another user takes root")
        root = FileManager.default.temporaryDirectory.appendingPathComponent("orch-fs-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try await super.setUp()
    }

    override func tearDown() async throws {
        if let root { try? FileManager.default.removeItem(at: root) }
        try await super.tearDown()
    }

    /// A time the tests move by hand.
    final class FakeClock: Sendable {
        let date = Mutex(Date())
        func now() -> Date { date.withLock { $0 } }
        func advance(by seconds: TimeInterval) { date.withLock { $0 += seconds } }
    }

    /// Every line logged, for tests of what was said.
    final class CapturedLog: Sendable {
        struct Line: Sendable {
            let level: Logger.Level
            let message: String
            let metadata: [String: String]
        }

        let lines = Mutex<[Line]>([])

        var logger: Logger {
            Logger(label: "fs-test") { _ in Handler(log: self) }
        }

        struct Handler: LogHandler {
            let log: CapturedLog
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace

            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }

            func log(event: LogEvent) {
                let merged = metadata.merging(event.metadata ?? [:]) { $1 }
                let line = Line(
                    level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" })
                log.lines.withLock { $0.append(line) }
            }
        }
    }

    /// Creates `relative` under the work dir (a folder when it ends with `/`), owned by `owner`.
    private func plant(_ relative: String, owner: UInt32? = nil) throws {
        let path = workdir + "/" + relative
        if relative.hasSuffix("/") {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } else {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        }
        if let owner { XCTAssertEqual(lchown(path, owner, owner), 0, path) }
    }

    private func owner(_ path: String) -> UInt32 {
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0, path)
        return info.st_uid
    }

    private func check(
        chown: Bool = false, privileged: Bool = true, ttl: Duration = .seconds(300), clock: FakeClock = FakeClock(),
        agentUIDs: Set<UInt32> = [], log: CapturedLog = CapturedLog(), alerts: Alerts = .off
    ) -> FileOwnershipCheck {
        FileOwnershipCheck(
            settings: .init(workdir: workdir, maxEntries: 1000, ttl: ttl, chown: chown, agentUIDs: agentUIDs),
            host: "host-a", replicaID: "replica-a", pool: database.pool, alerts: alerts, logger: log.logger,
            privileged: privileged, now: { clock.now() })
    }

    func testTheScanFindsEntriesOfAnotherUserAndPrintsTheHealingCommand() async throws {
        try plant("repos/acme/orch.git/HEAD")
        try plant("repos/acme/orch.git/objects/", owner: Self.nobody)
        try plant("worktrees/acme__orch/ORCH-1/README.md", owner: Self.nobody)
        // A link owned by nobody pointing outside: the link is examined, never followed.
        let outside = root.appendingPathComponent("outside.txt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: outside, contents: Data()))
        XCTAssertEqual(chown(outside, Self.nobody, Self.nobody), 0)
        try FileManager.default.createSymbolicLink(atPath: workdir + "/logs", withDestinationPath: root.path)
        XCTAssertEqual(lchown(workdir + "/logs", Self.nobody, Self.nobody), 0)

        let report = await check().check(normalize: false)

        XCTAssertNil(report.scan.error)
        XCTAssertEqual(report.scan.mismatched, 3, "\(report.scan.samples)")
        XCTAssertEqual(
            Set(report.scan.samples.map(\.path)),
            [
                workdir + "/repos/acme/orch.git/objects", workdir + "/worktrees/acme__orch/ORCH-1/README.md",
                workdir + "/logs",
            ])
        XCTAssertEqual(report.scan.samples.first?.uid, Self.nobody)
        // work, repos, acme, orch.git, HEAD, objects, worktrees, acme__orch, ORCH-1, README.md, logs
        XCTAssertEqual(report.scan.scanned, 11, "the link's target directory is not walked")
        XCTAssertFalse(report.scan.truncated)
        XCTAssertEqual(report.scan.uid, 0)
        XCTAssertEqual(report.healing, "chown -R 0:0 \(workdir)")
        XCTAssertEqual(
            FileOwnership.healingCommand(workdir: "/srv/my orch's", uid: 1000, gid: 1001, privileged: false),
            #"sudo chown -R 1000:1001 '/srv/my orch'\''s'"#)

        // Recorded for /queue, per host.
        let rows = try await FileOwnershipStore(pool: database.pool).scans()
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?.host, "host-a")
        XCTAssertEqual(rows.first?.replica, "replica-a")
        XCTAssertEqual(rows.first?.scan.mismatched, 3)
        XCTAssertEqual(rows.first?.scan.samples.count, 3)
        XCTAssertEqual(rows.first?.healing, report.healing)
        XCTAssertNil(rows.first?.normalized)

        // Bounded: a scan stops at its entry limit and says so.
        let bounded = FileOwnership.scan(workdir, expecting: .service(), maxEntries: 4)
        XCTAssertEqual(bounded.scanned, 4)
        XCTAssertTrue(bounded.truncated)
        // A work dir not created yet is clean.
        let missing = FileOwnership.scan(root.appendingPathComponent("none").path, expecting: .service(), maxEntries: 4)
        XCTAssertEqual(missing.scanned, 0)
        XCTAssertNil(missing.error)
        XCTAssertFalse(missing.needsHealing)
    }

    func testAScanIsReusedWithinTheTTLUnlessForced() async throws {
        try plant("repos/one.txt", owner: Self.nobody)
        let clock = FakeClock()
        let check = check(ttl: .seconds(60), clock: clock)
        let first = await check.current()
        XCTAssertEqual(first.scan.mismatched, 1)

        try plant("repos/two.txt", owner: Self.nobody)
        clock.advance(by: 30)
        let cached = await check.current()
        XCTAssertEqual(cached, first, "younger than the TTL: the same scan")

        let forced = await check.check(normalize: false)
        XCTAssertEqual(forced.scan.mismatched, 2, "a forced scan is fresh")
        XCTAssertEqual(forced.scan.scannedAt, clock.now())

        try plant("repos/three.txt", owner: Self.nobody)
        clock.advance(by: 59)
        let stillCached = await check.current()
        XCTAssertEqual(stillCached.scan.mismatched, 2, "the forced scan is the one reused")
        clock.advance(by: 2)
        let expired = await check.current()
        XCTAssertEqual(expired.scan.mismatched, 3, "older than the TTL: scanned again")
        let rows = try await FileOwnershipStore(pool: database.pool).scans()
        XCTAssertEqual(rows.first?.scan.mismatched, 3)
    }

    func testTheChownRunsOnlyWhenOptedInAndPrivileged() async throws {
        try plant("repos/acme/orch.git/config", owner: Self.nobody)
        try plant("repos/acme/orch.git/", owner: Self.nobody)
        try plant("homes/ORCH-1/.gitconfig")
        let outside = root.appendingPathComponent("outside.txt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: outside, contents: Data()))
        XCTAssertEqual(chown(outside, Self.nobody, Self.nobody), 0)
        try FileManager.default.createSymbolicLink(atPath: workdir + "/link", withDestinationPath: outside)
        XCTAssertEqual(lchown(workdir + "/link", Self.nobody, Self.nobody), 0)

        let off = await check(chown: false).check(normalize: true)
        XCTAssertEqual(off.normalization?.performed, false)
        XCTAssertTrue(off.normalization?.reason?.contains("ORCH_FS_NORMALIZE_CHOWN") == true, "\(off)")
        XCTAssertEqual(off.scan.mismatched, 3)

        let unprivileged = await check(chown: true, privileged: false).check(normalize: true)
        XCTAssertEqual(unprivileged.normalization?.performed, false)
        XCTAssertTrue(unprivileged.normalization?.reason?.contains("not privileged") == true, "\(unprivileged)")
        XCTAssertEqual(unprivileged.healing, "sudo chown -R 0:0 \(workdir)")
        XCTAssertEqual(owner(workdir + "/repos/acme/orch.git/config"), Self.nobody, "nothing changed")

        let healed = await check(chown: true).check(normalize: true)
        XCTAssertEqual(healed.normalization?.performed, true)
        XCTAssertEqual(healed.normalization?.changed, 3)
        XCTAssertEqual(healed.normalization?.failed, 0)
        XCTAssertEqual(healed.scan.mismatched, 0, "the scan after the chown shows what is left")
        XCTAssertNil(healed.healing)
        XCTAssertEqual(owner(workdir + "/repos/acme/orch.git/config"), 0)
        XCTAssertEqual(owner(workdir + "/link"), 0, "the link itself")
        XCTAssertEqual(owner(outside), Self.nobody, "never what it points to")
        let rows = try await FileOwnershipStore(pool: database.pool).scans()
        XCTAssertEqual(rows.first?.normalized, 3)
        XCTAssertNotNil(rows.first?.normalizedAt)
        XCTAssertNil(rows.first?.healing)

        // A later plain scan keeps the chown's figures.
        _ = await check().check(normalize: false)
        let later = try await FileOwnershipStore(pool: database.pool).scans()
        XCTAssertEqual(later.first?.normalized, 3)
    }

    func testEntriesOfTheAgentsUsersAreExpectedAndLeftAlone() async throws {
        try plant("homes/ORCH-1/", owner: Self.nobody)
        try plant("homes/ORCH-1/.config/", owner: Self.nobody)
        try plant("repos/stray.txt", owner: 4242)
        let report = await check(chown: true, agentUIDs: [Self.nobody]).check(normalize: true)
        XCTAssertEqual(report.normalization?.changed, 1, "only the stray file")
        XCTAssertEqual(report.scan.mismatched, 0)
        XCTAssertEqual(report.scan.agentOwned, 2, "the home and its .config")
        XCTAssertEqual(owner(workdir + "/homes/ORCH-1"), Self.nobody, "an agent's home stays its own")
    }

    func testTheStartupCheckLogsOneLineAndAlertsWhenMismatched() async throws {
        try plant("repos/acme/orch.git/", owner: Self.nobody)
        let log = CapturedLog()
        let alerts = Alerts(jobs: JobStore(pool: database.pool))
        let report = await check(log: log, alerts: alerts).startup()

        let lines = log.lines.withLock { $0 }
        XCTAssertEqual(lines.count, 1, "\(lines.map(\.message))")
        XCTAssertEqual(lines.first?.level, .warning)
        XCTAssertEqual(lines.first?.metadata["fs.healing"], "chown -R 0:0 \(workdir)")
        XCTAssertEqual(lines.first?.metadata["fs.mismatched"], "1")
        XCTAssertTrue(lines.first?.metadata["fs.samples"]?.contains("orch.git") == true, "\(lines)")
        let texts: [String] = try await database.pool.query(
            "SELECT payload->>'text' AS text FROM jobs WHERE kind = $1", [AlertJob.kind]
        ).rows.map { try $0.decode("text") }
        XCTAssertEqual(texts.count, 1)
        XCTAssertTrue(texts.first?.contains("chown -R 0:0 \(workdir)") == true, "\(texts)")
        XCTAssertTrue(texts.first?.contains("on host-a") == true, "\(texts)")
        XCTAssertEqual(report.scan.mismatched, 1)

        // With the opt-in chown the startup check heals, and says so in its one line; no alert.
        let healing = CapturedLog()
        let healed = await check(chown: true, log: healing, alerts: alerts).startup()
        XCTAssertEqual(healed.scan.mismatched, 0)
        let healingLines = healing.lines.withLock { $0 }
        XCTAssertEqual(healingLines.count, 1, "\(healingLines.map(\.message))")
        XCTAssertEqual(healingLines.first?.level, .info)
        XCTAssertEqual(healingLines.first?.metadata["fs.normalized"], "1")
        let alertCount: Int = try await database.pool.query(
            "SELECT count(*) AS n FROM jobs WHERE kind = $1", [AlertJob.kind]
        ).first!.decode("n")
        XCTAssertEqual(alertCount, 1)
    }

    func testPrepareFailsWithTheHealingCommandWhenGitRefusesTheClone() async throws {
        let remote = try makeBareRemote(in: root)
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: "acme/orch", cloneURL: remote.path, defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil)
        let workspace = Workspace(root: workdir)
        _ = try await workspace.prepare(repo, workItem: "ORCH-1")
        // The clone changes hands (a replica run as another user fetched into it, say): git, run
        // as root here, refuses a repository owned by someone else.
        let clone = workspace.clonePath(repo)
        try Ownership.change(clone, to: Self.nobody, Self.nobody)
        XCTAssertEqual(owner(clone), Self.nobody)

        do {
            _ = try await workspace.prepare(repo, workItem: "ORCH-1")
            XCTFail("prepare should fail")
        } catch let failure as Workspace.OwnershipFailure {
            let message = failure.description
            XCTAssertTrue(message.contains("dubious ownership"), message)
            XCTAssertTrue(message.contains("chown -R 0:0 \(workdir)"), message)
            XCTAssertTrue(message.contains("ORCH-1"), message)
            XCTAssertFalse(message.contains("core.hooksPath"), "git's words, not the argv: \(message)")
        }

        // Healed as the message says (here by the check's own chown), prepare works again.
        let healed = await check(chown: true).check(normalize: true)
        XCTAssertEqual(healed.scan.mismatched, 0)
        let worktree = try await workspace.prepare(repo, workItem: "ORCH-1")
        XCTAssertTrue(FileManager.default.fileExists(atPath: worktree + "/README.md"))
    }

    func testOnlyLocalPermissionProblemsCountAsOwnership() {
        struct Failure: Error, CustomStringConvertible { let description: String }
        let workdir = "/srv/orch"
        XCTAssertNil(
            FileOwnership.ownershipEvidence(
                in: Failure(description: "git fetch exited 128: git@git.example.com: Permission denied (publickey)."),
                under: workdir),
            "a remote's refusal is about credentials, not files")
        XCTAssertEqual(
            FileOwnership.ownershipEvidence(
                in: Failure(
                    description: "git worktree add exited 128: fatal: could not create directory of "
                        + "'/srv/orch/repos/acme/orch.git/worktrees/ORCH-1': Permission denied"),
                under: workdir),
            "fatal: could not create directory of '/srv/orch/repos/acme/orch.git/worktrees/ORCH-1': Permission denied")
        XCTAssertNotNil(
            FileOwnership.ownershipEvidence(in: CocoaError(.fileWriteNoPermission), under: workdir))
        XCTAssertNotNil(FileOwnership.ownershipEvidence(in: POSIXError(.EACCES), under: workdir))
        XCTAssertNil(FileOwnership.ownershipEvidence(in: POSIXError(.ENOSPC), under: workdir))
    }
}
