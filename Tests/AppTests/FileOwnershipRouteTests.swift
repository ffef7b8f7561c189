import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import TestSupport
import XCTest

@testable import App

#if canImport(Glibc)
import Glibc
#endif

/// `POST /fs-normalize/check?normalize=` and the `/queue` block `fs_ownership`, in-process against
/// PostgreSQL, with a work dir holding a file handed to nobody (65534).
final class FileOwnershipRouteTests: DatabaseTestCase {
    static let token = "fs-test-token"
    static let nobody: UInt32 = 65534
    var workdir: URL!

    override func setUp() async throws {
        try await super.setUp()
        workdir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orch-fs-route-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            at: workdir.appendingPathComponent("repos"), withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        if let workdir { try? FileManager.default.removeItem(at: workdir) }
        try await super.tearDown()
    }

    /// A file of nobody's in the work dir's clones.
    private func plantStrayFile() throws -> String {
        try XCTSkipUnless(geteuid() == 0, "handing a file to another user takes root")
        let path = workdir.appendingPathComponent("repos/stray.txt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        XCTAssertEqual(chown(path, Self.nobody, Self.nobody), 0)
        return path
    }

    private func app(_ environment: [String: String] = [:]) throws -> some ApplicationProtocol {
        Application(
            router: HTTPRoutes.router(
                pool: database.pool,
                configuration: try AppConfiguration(
                    environment: ["ORCH_ADMIN_TOKEN": Self.token, "ORCH_WORKDIR": workdir.path].merging(environment) {
                        $1
                    })))
    }

    private static var auth: HTTPFields {
        var fields = HTTPFields()
        fields[.authorization] = "Bearer \(token)"
        return fields
    }

    private static func object(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    func testACheckAnswersTheSeedsBodyWithTheHealingCommand() async throws {
        let stray = try plantStrayFile()
        let workdir = workdir.path
        try await app().test(.router) { client in
            try await client.execute(uri: "/fs-normalize/check", method: .post) { response in
                XCTAssertEqual(response.status, .unauthorized)
            }
            try await client.execute(uri: "/fs-normalize/check", method: .post, headers: Self.auth) { response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["ok"] as? Bool, true)
                XCTAssertEqual(body["enabled"] as? Bool, true)
                let scan = body["scan"] as? [String: Any]
                XCTAssertEqual(scan?["workdir"] as? String, workdir)
                XCTAssertEqual(scan?["mismatched"] as? Int, 1)
                XCTAssertEqual(scan?["scanned"] as? Int, 3)
                XCTAssertEqual(scan?["uid"] as? Int, 0)
                XCTAssertEqual(scan?["truncated"] as? Bool, false)
                XCTAssertEqual((scan?["samples"] as? [[String: Any]])?.first?["path"] as? String, stray)
                XCTAssertNotNil(scan?["scanned_at"] as? String)
                XCTAssertEqual(body["healing"] as? String, "chown -R 0:0 \(workdir)")
                XCTAssertNil(body["normalize"], "no chown was asked for")
            }
            // Asked to normalize with the chown not opted in: the scan, and why nothing changed.
            try await client.execute(uri: "/fs-normalize/check?normalize=1", method: .post, headers: Self.auth) {
                response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                let normalize = body["normalize"] as? [String: Any]
                XCTAssertEqual(normalize?["performed"] as? Bool, false)
                XCTAssertTrue((normalize?["reason"] as? String)?.contains("ORCH_FS_NORMALIZE_CHOWN") == true, "\(body)")
                XCTAssertEqual((body["scan"] as? [String: Any])?["mismatched"] as? Int, 1)
            }
            for bad in ["yes", "2", "maybe"] {
                try await client.execute(
                    uri: "/fs-normalize/check?normalize=\(bad)", method: .post, headers: Self.auth
                ) { response in
                    XCTAssertEqual(response.status, .badRequest, bad)
                    let body = Self.object(response.body)
                    XCTAssertEqual(body["ok"] as? Bool, false)
                    XCTAssertTrue((body["error"] as? String)?.contains("'normalize'") == true, "\(body)")
                }
            }
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                XCTAssertEqual(response.status, .ok)
                let block = Self.object(response.body)["fs_ownership"] as? [String: Any]
                XCTAssertEqual(block?["enabled"] as? Bool, true)
                XCTAssertEqual(block?["scope"] as? String, "all")
                XCTAssertEqual(block?["max_entries"] as? Int, 100_000)
                XCTAssertEqual(block?["ttl_seconds"] as? Double, 300)
                XCTAssertEqual(block?["chown"] as? Bool, false)
                let hosts = block?["hosts"] as? [[String: Any]]
                XCTAssertEqual(hosts?.count, 1)
                XCTAssertEqual(hosts?.first?["host"] as? String, ProcessInfo.processInfo.hostName)
                XCTAssertEqual(hosts?.first?["workdir"] as? String, workdir)
                XCTAssertEqual(hosts?.first?["mismatched"] as? Int, 1)
                XCTAssertEqual(hosts?.first?["healing"] as? String, "chown -R 0:0 \(workdir)")
                XCTAssertNotNil(hosts?.first?["scanned_at"] as? String)
            }
        }
    }

    func testNormalizeGivesTheFilesBackWhenOptedIn() async throws {
        let stray = try plantStrayFile()
        try await app(["ORCH_FS_NORMALIZE_CHOWN": "1"]).test(.router) { client in
            try await client.execute(uri: "/fs-normalize/check?normalize=true", method: .post, headers: Self.auth) {
                response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                let normalize = body["normalize"] as? [String: Any]
                XCTAssertEqual(normalize?["performed"] as? Bool, true, "\(body)")
                XCTAssertEqual(normalize?["changed"] as? Int, 1)
                XCTAssertEqual((body["scan"] as? [String: Any])?["mismatched"] as? Int, 0)
                XCTAssertTrue(body["healing"] is NSNull, "clean: healing is null, and present: \(body)")
            }
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                let block = Self.object(response.body)["fs_ownership"] as? [String: Any]
                XCTAssertEqual(block?["chown"] as? Bool, true)
                let host = (block?["hosts"] as? [[String: Any]])?.first
                XCTAssertEqual(host?["mismatched"] as? Int, 0)
                XCTAssertEqual(host?["normalized"] as? Int, 1)
                XCTAssertTrue(host?["healing"] is NSNull)
            }
        }
        var info = stat()
        XCTAssertEqual(lstat(stray, &info), 0)
        XCTAssertEqual(info.st_uid, 0)
    }

    func testSwitchedOffTheCheckSaysSoAndScansNothing() async throws {
        _ = try plantStrayFile()
        try await app(["ORCH_FS_NORMALIZE_ENABLED": "0"]).test(.router) { client in
            try await client.execute(uri: "/fs-normalize/check?normalize=1", method: .post, headers: Self.auth) {
                response in
                XCTAssertEqual(response.status, .ok)
                let body = Self.object(response.body)
                XCTAssertEqual(body["ok"] as? Bool, true)
                XCTAssertEqual(body["enabled"] as? Bool, false)
                XCTAssertTrue(body["scan"] is NSNull, "\(body)")
                XCTAssertTrue(body["healing"] is NSNull, "\(body)")
            }
            try await client.execute(uri: "/queue", method: .get, headers: Self.auth) { response in
                let block = Self.object(response.body)["fs_ownership"] as? [String: Any]
                XCTAssertEqual(block?["enabled"] as? Bool, false)
                XCTAssertEqual((block?["hosts"] as? [Any])?.count, 0, "nothing was scanned")
            }
        }
    }

    func testTheSettingsComeFromTheEnvironment() throws {
        let defaults = try AppConfiguration(environment: ["ORCH_WORKDIR": "/srv/orch"])
        XCTAssertTrue(defaults.fsNormalizeEnabled)
        XCTAssertEqual(
            defaults.fsNormalize,
            .init(workdir: "/srv/orch", maxEntries: 100_000, ttl: .seconds(300), chown: false, agentUIDs: []))
        let set = try AppConfiguration(environment: [
            "ORCH_FS_NORMALIZE_ENABLED": "0", "ORCH_FS_NORMALIZE_MAX_ENTRIES": "500", "ORCH_FS_NORMALIZE_TTL": "1m",
            "ORCH_FS_NORMALIZE_CHOWN": "1",
        ])
        XCTAssertFalse(set.fsNormalizeEnabled)
        XCTAssertEqual(set.fsNormalize.maxEntries, 500)
        XCTAssertEqual(set.fsNormalize.ttl, .seconds(60))
        XCTAssertTrue(set.fsNormalize.chown)
        for (key, value) in [
            ("ORCH_FS_NORMALIZE_ENABLED", "maybe"), ("ORCH_FS_NORMALIZE_MAX_ENTRIES", "0"),
            ("ORCH_FS_NORMALIZE_TTL", "soon"), ("ORCH_FS_NORMALIZE_CHOWN", "2"),
        ] {
            XCTAssertThrowsError(try AppConfiguration(environment: [key: value]), key) { error in
                XCTAssertEqual((error as? ConfigurationError)?.key, key)
            }
        }
    }
}
