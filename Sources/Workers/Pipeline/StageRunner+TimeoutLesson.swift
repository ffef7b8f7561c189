import Store

extension StageRunner {
    /// The `stage_timeout` detector: an agent killed at its timeout. The root cause names the
    /// role, stage and limit only — what differs between two timeouts of one problem (run id, log
    /// path) is evidence, so the journal's deduplication window recognises the repeat.
    static func timeoutLesson(
        _ run: AgentLauncher.Outcome, role: String, stage: TaskStage, timeout: Duration, jobID: Int64
    ) -> AutoLesson {
        let seconds = Int(timeout.seconds.rounded())
        return AutoLesson(
            type: "stage_timeout",
            rootCause: "the \(role) agent was killed at its timeout (\(seconds)s) in the \(stage.rawValue) stage",
            agent: role, runID: run.runID,
            evidence: [
                "log_path": run.logPath, "timeout_seconds": String(seconds), "job_id": String(jobID),
                "exit_code": String(run.exitCode),
            ])
    }
}
