import Foundation

/// One entry of a task's history.
public struct TaskHistoryEntry: Sendable, Encodable {
    public let event: String
    public let fromStage: String
    public let toStage: String
    public let fromStatus: String
    public let toStatus: String
    public let reason: String?
    public let actor: String
    public let at: Date
}
