/// `run_stage`: one try of one stage visit of one task. A second enqueue of the same try is a
/// no-op while the first is queued or running (the dedupe key names task, stage, visit and try).
public enum RunStageJob: JobContract {
    public typealias Payload = StageJobPayload

    public static let kind = "run_stage"
    public static let maxAttempts = 5

    public static func dedupeKey(for payload: StageJobPayload) -> String? {
        "stage:\(payload.work_item):\(payload.stage):v\(payload.visit ?? 0):\(payload.attempt ?? 0)"
    }
}
