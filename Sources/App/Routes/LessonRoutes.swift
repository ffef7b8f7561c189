import Foundation
import Hummingbird
import Store

/// `GET /lessons`, `POST /lessons`, `POST /lessons/{id}`: the lessons journal, with the seed's
/// bodies (``LessonBody``). Types are free text, as in the seed: filtering by a type no lesson has
/// finds nothing rather than a 400. With the journal switched off (`ORCH_LESSONS_ENABLED=0`)
/// every route answers `{"enabled":false}`, as the seed did.
struct LessonRoutes: Sendable {
    let lessons: LessonStore
    /// `ORCH_LESSONS_ENABLED`.
    var enabled = true

    /// Lessons matching the filters, newest first.
    struct Found: ResponseEncodable {
        let lessons: [Lesson]
    }

    /// A lesson just recorded or changed: the seed's `id`, and the lesson as stored.
    struct Recorded: ResponseEncodable {
        let ok = true
        let id: Int64
        let lesson: Lesson

        init(_ lesson: Lesson) {
            self.id = lesson.id
            self.lesson = lesson
        }
    }

    /// The seed's answer while the journal is off.
    struct Disabled: ResponseEncodable {
        let enabled = false
    }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/lessons") { request, context -> Response in
            guard enabled else { return try Self.disabled(request, context) }
            let query = request.uri.queryParameters
            func filter(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
            var limit = 50
            if let text = filter("limit") {
                guard let value = Int(text), (1...500).contains(value) else {
                    throw APIError(.badRequest, "'limit' must be an integer from 1 to 500")
                }
                limit = value
            }
            if let status = filter("status"), !Lesson.statuses.contains(status) {
                throw APIError(
                    .badRequest,
                    "unknown 'status' \(status.prefix(40)); one of \(Lesson.statuses.joined(separator: ", "))")
            }
            let found = Found(
                lessons: try await lessons.list(
                    type: filter("type"), status: filter("status"), repo: filter("repo"), workItem: filter("work_item"),
                    limit: limit))
            return try context.responseEncoder.encode(found, from: request, context: context)
        }
        routes.post("/lessons") { request, context -> Response in
            guard enabled else { return try Self.disabled(request, context) }
            let lesson = try await LessonBody.read(request).newLesson()
            var response = try context.responseEncoder.encode(
                Recorded(try await lessons.record(lesson)), from: request, context: context)
            response.status = .created
            return response
        }
        routes.post("/lessons/:id") { request, context -> Response in
            guard enabled else { return try Self.disabled(request, context) }
            guard let id = context.parameters.get("id").flatMap(Int64.init) else {
                throw APIError(.badRequest, "lesson id must be an integer")
            }
            let changes = try await LessonBody.read(request).changes
            guard let lesson = try await lessons.update(id: id, changes) else {
                throw APIError(.notFound, "unknown lesson \(id)")
            }
            return try context.responseEncoder.encode(Recorded(lesson), from: request, context: context)
        }
        return routes
    }

    private static func disabled(_ request: Request, _ context: AdminRequestContext) throws -> Response {
        try context.responseEncoder.encode(Disabled(), from: request, context: context)
    }
}
