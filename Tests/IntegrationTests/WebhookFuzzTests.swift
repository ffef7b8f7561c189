import Foundation
import Store
import TestSupport
import XCTest

@testable import App

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Thousands of malformed and hostile webhook requests against a running replica (a real process).
final class WebhookFuzzTests: DatabaseTestCase {
    var server: OrchestratorProcess?

    override func tearDown() async throws {
        if let server {
            if testRun?.hasSucceeded == false { print("---- replica output ----\n\(server.output.suffix(4000))") }
            await server.stop()
        }
        try await super.tearDown()
    }

    /// A small deterministic generator (SplitMix64), so a failing request can be reproduced.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    struct Probe: Sendable {
        let path: String
        let headers: [String: String]
        let body: [UInt8]
        let label: String
    }

    static func probes(count: Int, seed: UInt64) throws -> [Probe] {
        var rng = SplitMix(state: seed)
        let fixture = try WebhookTests.fixture("plane/issue_created.json")
        let giteaFixture = try WebhookTests.fixture("gitea/status_success.json")
        func planeSigned(_ body: [UInt8], _ label: String) -> Probe {
            Probe(
                path: "/webhook/plane",
                headers: ["X-Plane-Signature": WebhookSignature.hmacSHA256Hex(secret: "fuzz-plane", body: body)],
                body: body, label: label)
        }
        func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        let scalars: [String] = [
            "\u{202E}", "😀", "\u{0301}", "\\u0000", "\\ud800", "\u{FEFF}", "ℌ", "\"", "\\", "\u{10FFFF}",
        ]
        var probes: [Probe] = []
        for index in 0..<count {
            let unique = "\(seed)-\(index)"
            switch index % 12 {
            case 0:
                probes.append(planeSigned(randomBytes(Int.random(in: 0...512, using: &rng)), "random bytes, signed"))
            case 1:
                probes.append(
                    Probe(
                        path: "/webhook/plane", headers: ["X-Plane-Signature": String(repeating: "0", count: 64)],
                        body: randomBytes(64), label: "bad signature"))
            case 2:
                let depth = Int.random(in: 100...20_000, using: &rng)
                probes.append(
                    planeSigned(
                        Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8),
                        "deep nesting \(depth)"))
            case 3:
                let huge = String(repeating: "x", count: Int.random(in: 10_000...300_000, using: &rng))
                probes.append(
                    planeSigned(
                        Array(
                            #"{"event":"issue","action":"created","data":{"id":"\#(unique)","sequence_id":1,"project":"p","name":"\#(huge)"}}"#
                                .utf8), "huge string"))
            case 4:
                let wrong = [
                    #"{"event":1,"action":"created","data":{}}"#, #"{"event":"issue","action":[],"data":{}}"#,
                    #"{"event":"issue","action":"created","data":[]}"#,
                    #"{"event":"issue","action":"created","data":{"id":7,"sequence_id":1,"project":"p","name":"n"}}"#,
                    #"{"event":"issue","action":"created","data":{"id":"a","sequence_id":1.5,"project":"p","name":"n"}}"#,
                    "null", "\"string\"", "12",
                ]
                probes.append(
                    planeSigned(Array(wrong[Int.random(in: 0..<wrong.count, using: &rng)].utf8), "wrong types"))
            case 5:
                let name = (0..<8).map { _ in scalars[Int.random(in: 0..<scalars.count, using: &rng)] }.joined()
                probes.append(
                    planeSigned(
                        Array(
                            #"{"event":"issue","action":"created","data":{"id":"\#(unique)","sequence_id":2,"project":"p","name":"\#(name)"}}"#
                                .utf8), "unicode"))
            case 6:
                probes.append(
                    planeSigned(Array(fixture.prefix(Int.random(in: 0..<fixture.count, using: &rng))), "truncated"))
            case 7:
                if index % 84 == 7 {
                    probes.append(planeSigned(Array(repeating: UInt8(ascii: " "), count: (1 << 20) + 1), "oversized"))
                } else {
                    probes.append(
                        Probe(path: "/webhook/plane", headers: [:], body: fixture, label: "missing signature"))
                }
            case 8:
                let events = ["status", "push", "pull_request", "release", "", "💥", String(repeating: "e", count: 300)]
                let body = Int.random(in: 0...1, using: &rng) == 0 ? giteaFixture : randomBytes(100)
                probes.append(
                    Probe(
                        path: "/webhook/gitea",
                        headers: [
                            "X-Gitea-Signature": WebhookSignature.hmacSHA256Hex(secret: "fuzz-gitea", body: body),
                            "X-Gitea-Event": events[Int.random(in: 0..<events.count, using: &rng)],
                            "X-Gitea-Delivery": unique,
                        ], body: body, label: "gitea events"))
            case 9:
                var flipped = fixture
                flipped[Int.random(in: 0..<flipped.count, using: &rng)] ^= 0x20
                probes.append(
                    Probe(
                        path: "/webhook/plane",
                        headers: [
                            "X-Plane-Signature": WebhookSignature.hmacSHA256Hex(secret: "fuzz-plane", body: fixture)
                        ], body: flipped, label: "tampered"))
            case 10:
                probes.append(
                    Probe(
                        path: "/webhook/gitea",
                        headers: ["X-Gitea-Signature": "not hex at all ☃", "X-Gitea-Event": "push"], body: giteaFixture,
                        label: "garbage signature"))
            default:
                let body = Array(#"{"event":"cycle","action":"created","data":{"id":"\#(unique)"}}"#.utf8)
                probes.append(planeSigned(body, "unknown event"))
            }
        }
        return probes
    }

    func testFiveThousandHostileRequestsNeverCauseA5xxOrAStrayRow() async throws {
        let (server, base) = try OrchestratorProcess.serving(
            name: "fuzz", databaseURL: database.url, role: "api",
            environment: [
                "ORCH_PLANE_WEBHOOK_SECRET": "fuzz-plane", "ORCH_GITEA_WEBHOOK_SECRET": "fuzz-gitea",
                "ORCH_LOG_LEVEL": "error",
            ])
        self.server = server
        let session = testURLSession()
        let up = await waitUntilAnswering(base.appendingPathComponent("health"), timeout: .seconds(30))
        XCTAssertTrue(up, "replica answers /health")

        let probes = try Self.probes(count: 5000, seed: 20_261_125)
        let results = try await withThrowingTaskGroup(of: (Int, Int, Bool).self) { group in
            var collected: [(Int, Int, Bool)] = []
            var next = 0
            func add(_ index: Int) {
                let probe = probes[index]
                group.addTask {
                    var request = URLRequest(url: base.appendingPathComponent(String(probe.path.dropFirst())))
                    request.httpMethod = "POST"
                    request.httpBody = Data(probe.body)
                    for (name, value) in probe.headers { request.setValue(value, forHTTPHeaderField: name) }
                    let (data, response) = try await session.data(for: request)
                    let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                    let hasErrorShape = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] != nil
                    return (index, status, hasErrorShape)
                }
            }
            while next < min(8, probes.count) { add(next); next += 1 }
            while let result = try await group.next() {
                collected.append(result)
                if next < probes.count { add(next); next += 1 }
            }
            return collected
        }
        XCTAssertEqual(results.count, 5000)
        var byStatus: [Int: Int] = [:]
        for (index, status, hasBody) in results {
            byStatus[status, default: 0] += 1
            XCTAssertTrue((200..<500).contains(status), "probe \(index) (\(probes[index].label)) got \(status)")
            XCTAssertTrue(hasBody, "probe \(index) (\(probes[index].label)) answered without a JSON body")
        }
        print("fuzz statuses: \(byStatus.sorted { $0.key < $1.key })")
        XCTAssertTrue(server.process.isRunning, "the replica is still up")
        // Every stored row is an accepted (202) delivery; nothing rejected left a trace.
        let accepted = results.filter { $0.1 == 202 }.count
        let rows = try await database.pool.query("SELECT count(*) AS n FROM webhook_deliveries").first!.decode(
            "n", as: Int.self)
        XCTAssertEqual(rows, accepted)
        let jobs = try await database.pool.query("SELECT count(*) AS n FROM jobs WHERE kind = 'process_webhook'").first!
            .decode("n", as: Int.self)
        let ignored = try await database.pool.query(
            "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'ignored'"
        ).first!.decode("n", as: Int.self)
        XCTAssertEqual(jobs, rows - ignored)
        let health = try await session.data(from: base.appendingPathComponent("health"))
        XCTAssertEqual((health.1 as? HTTPURLResponse)?.statusCode, 200)
    }
}
