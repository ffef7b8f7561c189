extension TaskStore {
    /// The `cancelled_mid_stage` detector: a cancel that found a stage job of the task running
    /// threw work away (an agent killed halfway, tokens paid for nothing), which is worth knowing
    /// when it keeps happening; a cancel between stages costs nothing and records nothing.
    ///
    /// Decided here rather than in `TaskLifecycle`: whether a job is running is a fact only the
    /// database knows, at the moment the cancel locks the task. The run itself is found by
    /// ``LessonStore/recordAuto(_:task:on:settings:)`` (the task's latest run in this stage).
    static func cancelledMidStage(
        _ task: TaskRecord, runningJobs: [Int64], reason: String?, actor: String
    ) -> AutoLesson? {
        guard !runningJobs.isEmpty else { return nil }
        return AutoLesson(
            type: "cancelled_mid_stage",
            rootCause: "task cancelled while its \(task.state.stage.rawValue) stage was running",
            evidence: [
                "job_ids": runningJobs.map(String.init).joined(separator: ","), "cancelled_by": actor,
                "reason": String((reason ?? "").prefix(500)),
            ])
    }
}
