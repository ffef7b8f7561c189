import Foundation
import XCTest

/// A suite that starts real `orchestrator` replicas on its database, each test with a scratch
/// work dir of its own (with `logs/`): after each test the replicas in `processes` are stopped
/// (their output shown when the test failed) and the work dir removed.
open class ReplicaProcessTestCase: DatabaseTestCase {
    /// The replicas the test started; stopped after it.
    public var processes: [OrchestratorProcess] = []
    /// This test's `ORCH_WORKDIR`.
    public var workdir: URL!

    /// The work dir's name starts with this.
    open var workdirPrefix: String { "orch-replicas" }

    open override var databaseMaxConnections: Int { 12 }

    open override func setUp() async throws {
        try await super.setUp()
        workdir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "\(workdirPrefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(
            at: workdir.appendingPathComponent("logs"), withIntermediateDirectories: true)
    }

    open override func tearDown() async throws {
        await OrchestratorProcess.stopAll(processes, testFailed: testRun?.hasSucceeded == false)
        processes = []
        try? FileManager.default.removeItem(at: workdir)
        try await super.tearDown()
    }
}
