import Logging
import Store

extension StageRunner {
    /// A person's `/agent <text>` on the work item, kept while this stage's agent ran
    /// (`task_feedback`, source `plane_agent`): instead of the run's own outcome the stage starts
    /// again, as a new visit whose first job gets the text — applied by this job, behind its fence,
    /// so no second agent ever runs beside the first. True when that happened.
    func ranAgainForAgentRequests(
        _ task: TaskRecord, outcome: StageOutcome, agentRun: Int64,
        alongside: (@Sendable (Connection) async throws -> Void)?
    ) async throws -> Bool {
        let requests = try await tasks.pendingFeedback(workItem: task.workItem, sources: ["plane_agent"])
        guard !requests.isEmpty else { return false }
        let ids = requests.map(\.id)
        let feedback = requests.map { "A person asked on the work item (\($0.author ?? "Plane")): \($0.body)" }
            .joined(separator: "\n")
        try await outcome.apply(
            .agentFeedback(feedback: feedback), reason: String(feedback.prefix(2000)), agentRun: agentRun
        ) { connection in
            try await alongside?(connection)
            try await TaskStore.markFeedbackApplied(ids, on: connection)
        }
        return true
    }
}
