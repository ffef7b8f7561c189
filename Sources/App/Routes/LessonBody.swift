import Foundation
import Hummingbird
import Store

/// The body of `POST /lessons` and `POST /lessons/{id}`: the seed's field names (`lesson_type`,
/// `work_item_id`, `task_id`, …) and this service's older ones (`type`, `work_item`), checked
/// field by field so a bad body is a 400 naming the field before anything is written.
struct LessonBody: Sendable {
    /// Text fields by the name a client sends; aliases of one field share the second name.
    static let textFields: [String: String] = [
        "lesson_type": "type", "type": "type", "work_item_id": "work_item", "work_item": "work_item",
        "stage": "stage", "agent": "agent", "repo": "repo", "root_cause": "root_cause", "suggestion": "suggestion",
        "status": "status", "related_task": "related_task", "attribution": "attribution",
        "target_repo": "target_repo", "target_domain": "target_domain",
    ]
    /// Every accepted name, for the 400 about an unknown one.
    static let fieldNames = (Array(textFields.keys) + ["task_id", "detail"]).sorted()

    /// Text values by field (aliases resolved); nulls are left out, as if absent.
    var text: [String: String] = [:]
    var taskID: Int64?
    /// A JSON object.
    var detail: JSONB?
    /// Whether the seed's `lesson_type` named the type (the seed's rules then apply: no root cause needed).
    var seedType = false

    /// Reads and checks a request body (at most 64 KiB, a JSON object).
    static func read(_ request: Request) async throws -> LessonBody {
        var request = request
        guard let buffer = try? await request.collectBody(upTo: 64 * 1024),
            let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(buffer: buffer))
        else {
            throw APIError(.badRequest, "body must be a JSON object of lesson fields (at most 64 KiB)")
        }
        return try LessonBody(object)
    }

    init(_ object: [String: JSONValue]) throws {
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            if case .null = value { continue }
            if let field = Self.textFields[name] {
                guard case .string(let string) = value else { throw Self.wrongType(name, "a string") }
                if let earlier = text[field], earlier != string {
                    throw APIError(.badRequest, "'\(name)' and its alias disagree; send one of them")
                }
                text[field] = string
                if name == "lesson_type" { seedType = true }
            } else if name == "task_id" {
                guard case .integer(let id) = value else { throw Self.wrongType(name, "an integer") }
                taskID = id
            } else if name == "detail" {
                guard case .object = value else { throw Self.wrongType(name, "a JSON object") }
                detail = JSONB(text: String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
            } else {
                throw APIError(
                    .badRequest,
                    "unknown field '\(name.prefix(64))'; one of \(Self.fieldNames.joined(separator: ", "))")
            }
        }
        if let type = text["type"], type.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw APIError(.badRequest, "'lesson_type' must not be empty")
        }
        if let status = text["status"], !Lesson.statuses.contains(status) {
            throw APIError(
                .badRequest,
                "unknown 'status' \(status.prefix(40)); one of \(Lesson.statuses.joined(separator: ", "))")
        }
    }

    /// A manual lesson: the seed's body needs `lesson_type`; the older one needs `root_cause`
    /// (its type defaults to `other`).
    func newLesson() throws -> Lesson {
        let rootCause = text["root_cause"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard let type = text["type"] ?? (rootCause.isEmpty ? nil : "other") else {
            throw APIError(.badRequest, "missing 'lesson_type'")
        }
        guard seedType || !rootCause.isEmpty else { throw APIError(.badRequest, "missing 'root_cause'") }
        var lesson = Lesson(type: type, rootCause: rootCause)
        lesson.source = "manual"
        lesson.status = text["status"] ?? "open"
        lesson.workItem = text["work_item"]
        lesson.taskID = taskID
        lesson.stage = text["stage"]
        lesson.agent = text["agent"]
        lesson.repo = text["repo"]
        lesson.suggestion = text["suggestion"]
        lesson.attribution = text["attribution"]
        lesson.targetRepo = text["target_repo"]
        lesson.targetDomain = text["target_domain"]
        lesson.relatedTask = text["related_task"]
        lesson.detail = detail ?? JSONB(text: "{}")
        return lesson
    }

    /// What `POST /lessons/{id}` changes.
    var changes: LessonChanges {
        var changes = LessonChanges()
        changes.status = text["status"]
        changes.type = text["type"]
        changes.rootCause = text["root_cause"]
        changes.suggestion = text["suggestion"]
        changes.attribution = text["attribution"]
        changes.targetRepo = text["target_repo"]
        changes.targetDomain = text["target_domain"]
        changes.relatedTask = text["related_task"]
        changes.stage = text["stage"]
        changes.agent = text["agent"]
        changes.repo = text["repo"]
        changes.workItem = text["work_item"]
        changes.taskID = taskID
        changes.detail = detail
        return changes
    }

    private static func wrongType(_ name: String, _ expected: String) -> APIError {
        APIError(.badRequest, "'\(name)' must be \(expected)")
    }
}
