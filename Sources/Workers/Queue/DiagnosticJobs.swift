import Foundation
import Store

/// The handlers of the opt-in diagnostic job kinds (see ``DiagnosticJob``): no-op, sleep, fail and
/// record-execution jobs the multi-replica tests and benchmarks drive the real worker with.
public enum DiagnosticJobs {
    /// Registers every diagnostic kind; `diag.record` rows name `replicaID` as the executor.
    public static func register(in registry: inout JobRegistry, pool: ConnectionPool, replicaID: String) {
        let diagnostics = DiagnosticStore(pool: pool)
        registry.register(DiagnosticJob.Noop.kind) { _ in }
        registry.register(DiagnosticJob.Sleep.kind) { context in
            let payload = try DiagnosticJob.Sleep.payload(of: context.job)
            try await Task.sleep(for: .milliseconds(payload.ms ?? 1000))
        }
        registry.register(DiagnosticJob.Fail.kind) { context in
            let payload = try DiagnosticJob.Fail.payload(of: context.job)
            throw DiagnosticFailure(message: payload.message ?? "diagnostic failure")
        }
        registry.register(DiagnosticJob.Record.kind) { context in
            let started = Date()
            let payload = try DiagnosticJob.Record.payload(of: context.job)
            if let ms = payload.ms, ms > 0 { try await Task.sleep(for: .milliseconds(ms)) }
            try await diagnostics.recordExecution(
                jobID: context.job.id, attempt: context.job.attempt, replicaID: replicaID, startedAt: started)
        }
        registry.register(DiagnosticJob.Inline.kind, inline: true) { context in
            let started = Date()
            let payload = try DiagnosticJob.Inline.payload(of: context.job)
            if let ms = payload.ms, ms > 0 { try await Task.sleep(for: .milliseconds(ms)) }
            try await diagnostics.recordExecution(
                jobID: context.job.id, attempt: context.job.attempt, replicaID: replicaID, startedAt: started)
            if let message = payload.message { throw DiagnosticFailure(message: message) }
        }
    }

    /// The error a `diag.fail` (or failing `diag.inline`) job throws.
    struct DiagnosticFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
