import Foundation
import Hummingbird
import Store

/// `GET /lessons`, `POST /lessons`, `POST /lessons/{id}` (admin): the lessons journal.
extension AdminRoutes {
    struct LessonBody: Encodable {
        let id: Int64
        let type: String
        let source: String
        let status: String
        let work_item: String?
        let stage: String?
        let agent: String?
        let repo: String?
        let root_cause: String
        let suggestion: String?
        let attribution: String?
        let target_repo: String?
        let target_domain: String?
        let related_task: String?
        let created_at: String
        let updated_at: String

        init(_ lesson: Lesson) {
            id = lesson.id
            type = lesson.type
            source = lesson.source
            status = lesson.status
            work_item = lesson.workItem
            stage = lesson.stage
            agent = lesson.agent
            repo = lesson.repo
            root_cause = lesson.rootCause
            suggestion = lesson.suggestion
            attribution = lesson.attribution
            target_repo = lesson.targetRepo
            target_domain = lesson.targetDomain
            related_task = lesson.relatedTask
            created_at = iso(lesson.createdAt)
            updated_at = iso(lesson.updatedAt)
        }
    }

    private struct LessonEnvelope: Encodable {
        let ok = true
        let lesson: LessonBody
    }

    private struct NewLesson: Decodable {
        var type: String?
        var work_item: String?
        var stage: String?
        var agent: String?
        var repo: String?
        var root_cause: String?
        var suggestion: String?
        var attribution: String?
        var target_repo: String?
        var target_domain: String?
        var related_task: String?
    }

    private struct Reclassification: Decodable {
        var status: String?
        var type: String?
        var attribution: String?
        var suggestion: String?
        var target_repo: String?
        var target_domain: String?
    }

    func registerLessons(on router: Router<BasicRequestContext>) {
        let lessons = LessonStore(pool: pool)
        router.get("/lessons") { request, context in
            await admin(request, context) {
                let query = request.uri.queryParameters
                func filter(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
                var limit = 50
                if let text = filter("limit") {
                    guard let value = Int(text), (1...500).contains(value) else {
                        return json(ErrorBody("'limit' must be an integer from 1 to 500"), status: .badRequest)
                    }
                    limit = value
                }
                if let refusal = Self.refuseUnknown("type", filter("type"), allowed: Lesson.types)
                    ?? Self.refuseUnknown("status", filter("status"), allowed: Lesson.statuses) {
                    return refusal
                }
                struct Body: Encodable { let lessons: [LessonBody] }
                let found = try await lessons.list(
                    type: filter("type"), status: filter("status"), repo: filter("repo"), workItem: filter("work_item"), limit: limit)
                return json(Body(lessons: found.map(LessonBody.init)))
            }
        }
        router.post("/lessons") { request, context in
            await admin(request, context) {
                guard let body = await Self.decodeBody(NewLesson.self, from: request) else {
                    return json(ErrorBody("body must be a JSON object of lesson fields (at most 64 KiB)"), status: .badRequest)
                }
                guard let rootCause = body.root_cause?.trimmingCharacters(in: .whitespacesAndNewlines), !rootCause.isEmpty else {
                    return json(ErrorBody("missing 'root_cause'"), status: .badRequest)
                }
                let type = body.type ?? "other"
                if let refusal = Self.refuseUnknown("type", type, allowed: Lesson.types) { return refusal }
                var lesson = Lesson(type: type, rootCause: rootCause)
                lesson.source = "manual"
                lesson.workItem = body.work_item
                lesson.stage = body.stage
                lesson.agent = body.agent
                lesson.repo = body.repo
                lesson.suggestion = body.suggestion
                lesson.attribution = body.attribution
                lesson.targetRepo = body.target_repo
                lesson.targetDomain = body.target_domain
                lesson.relatedTask = body.related_task
                return json(LessonEnvelope(lesson: LessonBody(try await lessons.record(lesson))), status: .created)
            }
        }
        router.post("/lessons/:id") { request, context in
            await admin(request, context) {
                guard let id = context.parameters.get("id").flatMap(Int64.init) else {
                    return json(ErrorBody("lesson id must be an integer"), status: .badRequest)
                }
                guard let body = await Self.decodeBody(Reclassification.self, from: request) else {
                    return json(ErrorBody("body must be a JSON object with status, type, attribution, suggestion, target_repo or target_domain"), status: .badRequest)
                }
                if let refusal = Self.refuseUnknown("status", body.status, allowed: Lesson.statuses)
                    ?? Self.refuseUnknown("type", body.type, allowed: Lesson.types) {
                    return refusal
                }
                guard let lesson = try await lessons.reclassify(
                    id: id, status: body.status, type: body.type, attribution: body.attribution, suggestion: body.suggestion,
                    targetRepo: body.target_repo, targetDomain: body.target_domain)
                else { return json(ErrorBody("unknown lesson \(id)"), status: .notFound) }
                return json(LessonEnvelope(lesson: LessonBody(lesson)))
            }
        }
    }

    /// A 400 naming the field and the allowed values when `value` is set but not one of them.
    private static func refuseUnknown(_ field: String, _ value: String?, allowed: [String]) -> Response? {
        guard let value, !allowed.contains(value) else { return nil }
        return json(ErrorBody("unknown '\(field)' \(value.prefix(40)); one of \(allowed.joined(separator: ", "))"), status: .badRequest)
    }

    /// The request body (at most 64 KiB) decoded as JSON, or nil when it is not that.
    private static func decodeBody<T: Decodable>(_ type: T.Type, from request: Request) async -> T? {
        var request = request
        guard let buffer = try? await request.collectBody(upTo: 64 * 1024) else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(buffer: buffer))
    }
}
