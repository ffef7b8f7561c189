import Foundation
import Logging
import Store

extension StageRunner {
    /// The `stalled` detector: an agent stopped because it printed nothing for its stall timeout.
    /// Like ``timeoutLesson(_:role:stage:timeout:jobID:)`` the root cause names only the role,
    /// stage and limit, so repeats fall in the journal's deduplication window; the last thing the
    /// agent printed is evidence (`last_output`), with the log's path.
    static func stallLesson(
        _ run: AgentLauncher.Outcome, role: String, stage: TaskStage, limit: Duration, jobID: Int64
    ) -> AutoLesson {
        let seconds = Int(limit.seconds.rounded())
        var evidence = [
            "log_path": run.logPath, "stall_timeout_seconds": String(seconds), "job_id": String(jobID),
            "exit_code": String(run.exitCode),
        ]
        evidence["last_output"] = AgentResultParser.lastLine(logPath: run.logPath)
        return AutoLesson(
            type: "stalled",
            rootCause:
                "the \(role) agent printed nothing for \(seconds)s in the \(stage.rawValue) stage and was stopped",
            agent: role, runID: run.runID, evidence: evidence)
    }

    /// Records the stall's lesson at once: the stage is not judged (the job is retried), so there
    /// is no outcome to commit it with. A journal that cannot be written does not change that.
    func recordStall(_ lesson: AutoLesson, task: TaskRecord, run: AgentLauncher.Outcome, logger: Logger) async {
        logger.warning(
            "agent stalled: stopped and its stage will be retried",
            metadata: [
                "agent.run": "\(run.runID)", "agent.log": "\(run.logPath)",
                "agent.last_output": "\(lesson.evidence["last_output"] ?? "")",
            ])
        do {
            _ = try await lessons.recordAuto(lesson, task: task)
        } catch {
            logger.error("could not record the stall's lesson", metadata: ["db.error": "\(error)"])
        }
    }
}
