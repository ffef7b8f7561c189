import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Workers

// The merge lease between real `orchestrator serve` replicas: a replica SIGKILLed while it holds
// a repository's lease (verifying its merge commit, CI pending) frees it with its session, and
// the other replica's waiting merge takes it within about a second; the killed replica's merge,
// retried, resumes its verification and is never merged twice.
extension GiteaMergeTests {
    static let leaseHeads = [
        "orch/ORCH-7": String(repeating: "a", count: 40), "orch/ORCH-8": String(repeating: "b", count: 40),
    ]
    static let leaseMerges = [1: String(repeating: "1", count: 40), 2: String(repeating: "2", count: 40)]

    /// ORCH-7 (PR #1) and ORCH-8 (PR #2) at merge, their heads green; their merge jobs queued,
    /// ORCH-7's due now and ORCH-8's in an hour (the test wakes it).
    private func twoTasksAtMerge() async throws {
        for workItem in ["ORCH-7", "ORCH-8"] {
            _ = try await tasks.upsert(
                workItem: workItem, repo: "acme/orch", title: workItem, description: "", labels: ["auto"],
                track: .full, auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
        }
        var merges: [String: JobLease] = [:]
        while merges.count < 2 {
            let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(60))
            let job = try XCTUnwrap(claimed.first)
            let lease = try XCTUnwrap(job.lease)
            let payload = try RunStageJob.payload(of: job)
            if payload.stage == "merge" {
                merges[payload.work_item] = lease
                continue
            }
            let task = try await tasks.task(workItem: payload.work_item)
            _ = try await tasks.apply(
                .stagePassed, workItem: payload.work_item, actor: "test", reason: "passed",
                about: task?.currentVisit, fence: lease)
        }
        for (number, workItem) in [(1, "ORCH-7"), (2, "ORCH-8")] {
            let head = try XCTUnwrap(Self.leaseHeads["orch/\(workItem)"])
            try await database.pool.withTransaction { connection in
                try await TaskStore.recordOwnPullRequest(
                    workItem: workItem, number: number, headSHA: head, on: connection)
            }
            _ = try await tasks.recordCommitStatus(
                repo: "acme/orch", sha: head, context: "ci/build", state: .success, statusID: Int64(number),
                targetURL: nil, description: nil)
        }
        _ = try await jobs.postpone(try XCTUnwrap(merges["ORCH-7"]), after: .zero, reason: "test: merge now")
        _ = try await jobs.postpone(try XCTUnwrap(merges["ORCH-8"]), after: .seconds(3600), reason: "test: later")
    }

    func testAReplicaKilledHoldingTheLeaseHandsItToTheWaitingMergeWithinASecond() async throws {
        try await twoTasksAtMerge()
        let gitea = GiteaStandIn(
            repo: "acme/orch", ciState: "pending", headOf: { Self.leaseHeads[$0] ?? "" },
            performMerge: { pull, _ in Self.leaseMerges[pull.number] ?? "" })
        gitea.add(headRef: "orch/ORCH-7", headRepo: "acme/orch", headSHA: Self.leaseHeads["orch/ORCH-7"]!)
        gitea.add(headRef: "orch/ORCH-8", headRepo: "acme/orch", headSHA: Self.leaseHeads["orch/ORCH-8"]!)
        let remote = try makeBareRemote(in: root)
        let config = root.appendingPathComponent("orchestrator.yaml")
        try """
        repos: [{ project: ORCH, repo: acme/orch, clone_url: "\(remote.path)", ci: required, merge_verify: { window: 10m } }]
        agents: { default: { command: ["/bin/false"], timeout: 60s } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let database = self.database!
        let leases = MergeLeaseStore(pool: database.pool)
        try await StandInServer.with(gitea.router) { api in
            func replica(_ name: String, slots: Int) async throws -> OrchestratorProcess {
                let (server, base) = try OrchestratorProcess.serving(
                    name: name, databaseURL: database.url, role: "all",
                    environment: [
                        "ORCH_PLANE_WEBHOOK_SECRET": "s", "ORCH_ADMIN_TOKEN": "admin", "ORCH_CONFIG": config.path,
                        "ORCH_WORKDIR": self.root.appendingPathComponent("work-\(name)").path,
                        "ORCH_POLL_INTERVAL": "2s", "ORCH_CI_POLL_INTERVAL": "250ms",
                        "ORCH_MAX_CONCURRENCY": String(slots),
                        "ORCH_GITEA_API_URL": api.absoluteString, "ORCH_GITEA_TOKEN": "gitea-token",
                        "ORCH_GITEA_WEBHOOK_SECRET": "gitea-secret",
                    ])
                self.servers.append(server)
                let up = await waitUntilAnswering(base.appendingPathComponent("health/ready"))
                XCTAssertTrue(up, name)
                return server
            }
            // The first replica merges ORCH-7 and holds the lease while its merge commit's CI is
            // pending, in its only worker slot: ORCH-8's merge can only run on the other replica,
            // which polls every 2 s (the default), so only its own look-again can take over in time.
            let holder = try await replica("lease-holder", slots: 1)
            let holding = try await waitUntil(timeout: .seconds(60)) {
                try await leases.live().map(\.workItem) == ["ORCH-7"] && gitea.mergeCalls.count == 1
            }
            XCTAssertTrue(holding, "ORCH-7 merged and verifying under the lease")
            _ = try await replica("lease-waiter", slots: 4)

            // ORCH-8's merge comes due and finds the lease taken: postponed, waiting.
            try await self.tasks.wakeMerge(workItem: "ORCH-8")
            let waiting = try await waitUntil(timeout: .seconds(30)) {
                try await self.jobs.jobs(workItem: "ORCH-8").contains {
                    $0.status == .queued && $0.lastError?.hasPrefix(MergeLeaseStore.waitReason) == true
                }
            }
            XCTAssertTrue(waiting, "ORCH-8's merge waits for the lease")
            XCTAssertEqual(gitea.mergeCalls.count, 1)

            // SIGKILL: nobody releases or notifies; the session's end frees the lock.
            let clock = ContinuousClock()
            holder.signal(SIGKILL)
            let killedAt = clock.now
            let handedOver = try await waitUntil(timeout: .seconds(30)) {
                try await leases.live().map(\.workItem) == ["ORCH-8"]
            }
            let took = clock.now - killedAt
            print("merge lease hand-over after SIGKILL of its holder: \(took)")
            XCTAssertTrue(handedOver, "the waiting merge took the lease")
            XCTAssertLessThan(took, .seconds(2), "hand-over took \(took); target < 1 s")
            let merged = await waitUntil(timeout: .seconds(10)) { gitea.mergeCalls.count == 2 }
            XCTAssertTrue(merged, "ORCH-8 merged under the lease")

            // Both merge commits turn green (status webhooks): ORCH-8 passes; ORCH-7's merge,
            // rescued from the dead replica, resumes its verification and passes without merging again.
            for (number, sha) in Self.leaseMerges {
                _ = try await self.tasks.recordCommitStatus(
                    repo: "acme/orch", sha: sha, context: "ci/main", state: .success, statusID: Int64(100 + number),
                    targetURL: nil, description: nil)
            }
            let passed = try await waitUntil(timeout: .seconds(60)) {
                let seven = try await self.tasks.task(workItem: "ORCH-7")
                let eight = try await self.tasks.task(workItem: "ORCH-8")
                return seven?.state.stage != .merge && eight?.state.stage != .merge
            }
            XCTAssertTrue(passed, "both merges verified and passed")
        }
        XCTAssertEqual(gitea.mergeCalls.count, 2, "each pull request merged once")
        let seven = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(seven?.mergeSHA, Self.leaseMerges[1])
        let live = try await leases.live()
        XCTAssertTrue(live.isEmpty)
    }
}
