import Foundation
import Hummingbird
import NIOCore
import TestSupport
import XCTest

@testable import Workers

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// GiteaClient against a stand-in that behaves like Gitea: the existing pull request of a later
/// development round is found on any page, only from the task's own repository and into the
/// default branch; the merge sends the fields Gitea reads.
final class GiteaPullRequestTests: XCTestCase {
    let head = "orch/ORCH-7"

    private func client(_ api: URL) -> GiteaClient {
        GiteaClient(settings: GiteaSettings(baseURL: api, token: "gitea-token"))
    }

    func testAnExistingPullRequestOnPageTwoIsFoundAndAForksIsIgnored() async throws {
        let gitea = GiteaStandIn(repo: "acme/orch", headOf: { _ in "abc123" })
        // Ours is the oldest (newest come first: it is on page 2 of 60); a fork's PR from a branch
        // of the same name, and ours into another base, are newer and on page 1.
        let ours = gitea.add(headRef: head, headRepo: "acme/orch", baseRef: "main", headSHA: "abc123")
        for index in 0..<56 { gitea.add(headRef: "feature/\(index)", headRepo: "acme/orch") }
        gitea.add(headRef: head, headRepo: "acme/orch", baseRef: "main", state: "closed")
        gitea.add(headRef: head, headRepo: "acme/orch", baseRef: "release")
        gitea.add(headRef: head, headRepo: "mallory/orch", baseRef: "main", headSHA: "evil")
        gitea.add(headRef: "orch/ORCH-8", headRepo: "acme/orch")
        XCTAssertEqual(gitea.all.count, 61)

        let pull = try await StandInServer.with(gitea.router) { api in
            try await client(api).openOrFindPullRequest(
                repo: "acme/orch", head: head, base: "main", title: "t", body: "b")
        }
        XCTAssertEqual(pull.number, ours)
        XCTAssertEqual(pull.headSHA, "abc123")
        XCTAssertEqual(
            gitea.requestLog,
            [
                "POST /api/v1/repos/acme/orch/pulls",
                "GET /api/v1/repos/acme/orch/pulls?state=open&page=1&limit=50",
                "GET /api/v1/repos/acme/orch/pulls?state=open&page=2&limit=50",
            ])
    }

    func testAForksPullRequestWithTheSameBranchIsNeverTakenForOurs() async throws {
        let gitea = GiteaStandIn(repo: "acme/orch")
        gitea.add(headRef: head, headRepo: "mallory/orch", baseRef: "main")
        gitea.add(headRef: head, headRepo: "acme/orch", baseRef: "release")
        let found = try await StandInServer.with(gitea.router) { api in
            try await client(api).findOpenPullRequest(repo: "acme/orch", head: head, base: "main")
        }
        XCTAssertNil(found)
        // Opening one creates ours (Gitea only refuses a duplicate of the same head repository).
        let opened = try await StandInServer.with(gitea.router) { api in
            try await client(api).openOrFindPullRequest(
                repo: "acme/orch", head: head, base: "main", title: "t", body: "b")
        }
        XCTAssertEqual(opened.number, 3)
    }

    func testAQueryEscapedIntoThePathIsNotFound() async throws {
        let gitea = GiteaStandIn(repo: "acme/orch")
        gitea.add(headRef: head, headRepo: "acme/orch")
        let statuses = try await StandInServer.with(gitea.router) { api in
            let session = testURLSession()
            let escaped = api.appendingPathComponent("api/v1/repos/acme/orch/pulls?state=open&limit=50")
            XCTAssertTrue(escaped.absoluteString.contains("%3F"), escaped.absoluteString)
            let (_, wrong) = try await session.data(from: escaped)
            let listing = URL(string: "\(api)/api/v1/repos/acme/orch/pulls?state=open")!
            let (_, right) = try await session.data(from: listing)
            return ((wrong as? HTTPURLResponse)?.statusCode, (right as? HTTPURLResponse)?.statusCode)
        }
        XCTAssertEqual(statuses.0, 404)
        XCTAssertEqual(statuses.1, 200)
    }

    func testTheMergeSendsTheFieldsGiteaReads() async throws {
        let merged = SharedValue("")
        let gitea = GiteaStandIn(
            repo: "acme/orch", headOf: { _ in "abc123" },
            performMerge: { _, message in
                merged.value = message
                return "def456"
            })
        let number = gitea.add(headRef: head, headRepo: "acme/orch", headSHA: "abc123")
        let results = try await StandInServer.with(gitea.router) { api in
            let gitea = self.client(api)
            let stale = try await gitea.merge(repo: "acme/orch", number: number, headSHA: "old", message: "Merge it")
            let result = try await gitea.merge(
                repo: "acme/orch", number: number, headSHA: "abc123",
                message: "Merge orch/ORCH-7 (ORCH-7)\n\nReviewed.\n")
            let again = try await gitea.merge(repo: "acme/orch", number: number, headSHA: "abc123", message: "Merge it")
            let pull = try await gitea.pullRequest(repo: "acme/orch", number: number)
            return (stale, result, again, pull)
        }
        XCTAssertEqual(results.0, .staleHead)
        XCTAssertEqual(results.1, .merged)
        XCTAssertEqual(results.2, .notMergeable("already merged"))
        XCTAssertEqual(results.3?.merged, true)
        XCTAssertEqual(results.3?.mergeSHA, "def456")
        XCTAssertEqual(
            gitea.mergeCalls[1],
            .init(
                number: number, headCommitID: "abc123", title: "Merge orch/ORCH-7 (ORCH-7)", message: "Reviewed.",
                deleteBranchAfterMerge: true))
        XCTAssertEqual(merged.value, "Merge orch/ORCH-7 (ORCH-7)\n\nReviewed.")
    }
}
