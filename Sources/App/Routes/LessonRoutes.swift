import Foundation
import Hummingbird
import Store

/// `GET /lessons`, `POST /lessons`, `POST /lessons/{id}`: the lessons journal.
struct LessonRoutes: Sendable {
    let lessons: LessonStore

    /// Lessons matching the filters, newest first.
    struct Found: ResponseEncodable {
        let lessons: [Lesson]
    }

    /// A lesson just recorded or re-classified.
    struct Recorded: ResponseEncodable {
        let ok = true
        let lesson: Lesson
    }

    /// `POST /lessons`: a manual lesson (only `root_cause` required).
    private struct NewLesson: Decodable {
        var type: String?
        var workItem: String?
        var stage: String?
        var agent: String?
        var repo: String?
        var rootCause: String?
        var suggestion: String?
        var attribution: String?
        var targetRepo: String?
        var targetDomain: String?
        var relatedTask: String?

        // Explicit keys: only the documented snake_case names are read.
        enum CodingKeys: String, CodingKey {
            case type, stage, agent, repo, suggestion, attribution
            case workItem = "work_item"
            case rootCause = "root_cause"
            case targetRepo = "target_repo"
            case targetDomain = "target_domain"
            case relatedTask = "related_task"
        }
    }

    /// `POST /lessons/{id}`: what an analyst may change.
    private struct Reclassification: Decodable {
        var status: String?
        var type: String?
        var attribution: String?
        var suggestion: String?
        var targetRepo: String?
        var targetDomain: String?

        enum CodingKeys: String, CodingKey {
            case status, type, attribution, suggestion
            case targetRepo = "target_repo"
            case targetDomain = "target_domain"
        }
    }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/lessons") { request, _ in
            let query = request.uri.queryParameters
            func filter(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
            var limit = 50
            if let text = filter("limit") {
                guard let value = Int(text), (1...500).contains(value) else {
                    throw APIError(.badRequest, "'limit' must be an integer from 1 to 500")
                }
                limit = value
            }
            try Self.refuseUnknown("type", filter("type"), allowed: Lesson.types)
            try Self.refuseUnknown("status", filter("status"), allowed: Lesson.statuses)
            return Found(
                lessons: try await lessons.list(
                    type: filter("type"), status: filter("status"), repo: filter("repo"), workItem: filter("work_item"),
                    limit: limit))
        }
        routes.post("/lessons") { request, _ in
            guard let body = await request.decodeJSONBody(NewLesson.self) else {
                throw APIError(.badRequest, "body must be a JSON object of lesson fields (at most 64 KiB)")
            }
            guard let rootCause = body.rootCause?.trimmingCharacters(in: .whitespacesAndNewlines), !rootCause.isEmpty
            else {
                throw APIError(.badRequest, "missing 'root_cause'")
            }
            let type = body.type ?? "other"
            try Self.refuseUnknown("type", type, allowed: Lesson.types)
            var lesson = Lesson(type: type, rootCause: rootCause)
            lesson.source = "manual"
            lesson.workItem = body.workItem
            lesson.stage = body.stage
            lesson.agent = body.agent
            lesson.repo = body.repo
            lesson.suggestion = body.suggestion
            lesson.attribution = body.attribution
            lesson.targetRepo = body.targetRepo
            lesson.targetDomain = body.targetDomain
            lesson.relatedTask = body.relatedTask
            return EditedResponse(status: .created, response: Recorded(lesson: try await lessons.record(lesson)))
        }
        routes.post("/lessons/:id") { request, context in
            guard let id = context.parameters.get("id").flatMap(Int64.init) else {
                throw APIError(.badRequest, "lesson id must be an integer")
            }
            guard let body = await request.decodeJSONBody(Reclassification.self) else {
                throw APIError(
                    .badRequest,
                    "body must be a JSON object with status, type, attribution, suggestion, target_repo or target_domain"
                )
            }
            try Self.refuseUnknown("status", body.status, allowed: Lesson.statuses)
            try Self.refuseUnknown("type", body.type, allowed: Lesson.types)
            guard
                let lesson = try await lessons.reclassify(
                    id: id, status: body.status, type: body.type, attribution: body.attribution,
                    suggestion: body.suggestion,
                    targetRepo: body.targetRepo, targetDomain: body.targetDomain)
            else { throw APIError(.notFound, "unknown lesson \(id)") }
            return Recorded(lesson: lesson)
        }
        return routes
    }

    /// A 400 naming the field and the allowed values when `value` is set but not one of them.
    private static func refuseUnknown(_ field: String, _ value: String?, allowed: [String]) throws {
        guard let value, !allowed.contains(value) else { return }
        throw APIError(.badRequest, "unknown '\(field)' \(value.prefix(40)); one of \(allowed.joined(separator: ", "))")
    }
}
