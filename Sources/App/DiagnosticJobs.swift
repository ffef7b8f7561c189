import Foundation
import Store
import Workers

/// Opt-in job kinds for operators and tests (`ORCH_DIAGNOSTIC_JOBS=1`): they exercise the queue
/// without side effects outside the database.
///
/// - `diag.noop`: does nothing.
/// - `diag.sleep`: sleeps `{"ms": n}` (cancellable).
/// - `diag.fail`: throws `{"message": "…"}`; retried with backoff like any failure.
/// - `diag.record`: sleeps `{"ms": n}` then writes one `diag_executions` row per execution.
enum DiagnosticJobs {
    private struct Payload: Decodable {
        var ms: Int?
        var message: String?
    }

    static func register(in registry: inout JobRegistry, pool: ConnectionPool, replicaID: String) {
        let diagnostics = DiagnosticStore(pool: pool)
        registry.register("diag.noop") { _ in }
        registry.register("diag.sleep") { context in
            let payload = try context.job.payload.decode(Payload.self)
            try await Task.sleep(for: .milliseconds(payload.ms ?? 1000))
        }
        registry.register("diag.fail") { context in
            let payload = try context.job.payload.decode(Payload.self)
            throw DiagnosticFailure(message: payload.message ?? "diagnostic failure")
        }
        registry.register("diag.record") { context in
            let started = Date()
            let payload = try context.job.payload.decode(Payload.self)
            if let ms = payload.ms, ms > 0 { try await Task.sleep(for: .milliseconds(ms)) }
            try await diagnostics.recordExecution(jobID: context.job.id, attempt: context.job.attempt, replicaID: replicaID, startedAt: started)
        }
    }

    struct DiagnosticFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
