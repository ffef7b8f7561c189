import Store
import TestSupport
import XCTest

final class DiagnosticStoreTests: XCTestCase {
    /// Two replicas starting together both prepare the diagnostics table: neither may fail
    /// (it did: "type diag_executions already exists", SQLSTATE 42710, stopped one replica).
    func testConcurrentPrepareFromManyReplicasSucceeds() async throws {
        for _ in 0..<5 {
            try await withTestDatabase(suite: "diag", maxConnections: 8) { database in
                let pool = database.pool
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<6 { group.addTask { try await DiagnosticStore(pool: pool).prepare() } }
                    try await group.waitForAll()
                }
            }
        }
    }
}
