import Foundation
import Hummingbird
import NIOCore
import Store

/// An agent run's live output, from any replica (the events are in Postgres):
/// `GET /tasks/{work_item}/runs/{run}/events?after=&limit=` pages through them, and
/// `GET /tasks/{work_item}/runs/{run}/events/stream` follows them as Server-Sent Events until the
/// run has ended and every event is sent (`event: end`).
struct RunEventRoutes: Sendable {
    let pool: ConnectionPool
    /// How often a stream looks for new events.
    var pollInterval: Duration = .milliseconds(200)
    /// How long a stream may be quiet before a comment line keeps proxies from closing it.
    var keepAlive: Duration = .seconds(15)

    /// The most events a page holds.
    static let maxPage = 5000

    private var events: AgentRunEventStore { AgentRunEventStore(pool: pool) }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/tasks/:work_item/runs/:run/events") { request, context -> Response in
            let (workItem, runID) = try Self.run(context)
            let query = request.uri.queryParameters
            let after = try Self.number(query.get("after"), name: "after") ?? 0
            let limit = min(Self.maxPage, max(1, try Self.number(query.get("limit"), name: "limit") ?? 500))
            guard let ended = try await events.hasEnded(Int64(runID), of: workItem) else {
                throw APIError(.notFound, "no run \(runID) of task '\(workItem.prefix(64))'")
            }
            let page = try await events.events(runID: Int64(runID), after: after, limit: limit)
            let items = page.map(Self.json).joined(separator: ",")
            let body =
                #"{"run":\#(runID),"ended":\#(ended),"events":[\#(items)],"next_after":\#(page.last?.seq ?? after)}"#
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        routes.get("/tasks/:work_item/runs/:run/events/stream") { request, context -> Response in
            let (workItem, runID) = try Self.run(context)
            guard try await events.hasEnded(Int64(runID), of: workItem) != nil else {
                throw APIError(.notFound, "no run \(runID) of task '\(workItem.prefix(64))'")
            }
            // A reconnecting EventSource sends the last id it saw.
            let resume =
                try Self.number(request.header(named: "Last-Event-ID"), name: "Last-Event-ID")
                ?? Self.number(request.uri.queryParameters.get("after"), name: "after") ?? 0
            let (events, poll, keepAlive) = (self.events, pollInterval, keepAlive)
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    try await Self.follow(
                        runID: Int64(runID), workItem: workItem, after: resume, events: events, poll: poll,
                        keepAlive: keepAlive, writer: &writer)
                })
        }
        return routes
    }

    /// Sends the run's events after `after` as they are stored, then `event: end` once the run has
    /// ended and nothing is left; a client that goes away ends it (the write throws).
    private static func follow(
        runID: Int64, workItem: String, after: Int, events: AgentRunEventStore, poll: Duration, keepAlive: Duration,
        writer: inout any ResponseBodyWriter
    ) async throws {
        var last = after
        let clock = ContinuousClock()
        var lastWrite = clock.now
        try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
        while true {
            // Whether it had ended is read before the events, so none stored before the end is missed.
            let ended = try await events.hasEnded(runID, of: workItem) ?? true
            let page = try await events.events(runID: runID, after: last, limit: maxPage)
            if !page.isEmpty {
                var text = ""
                for event in page {
                    text += "id: \(event.seq)\nevent: \(event.kind)\ndata: \(json(event))\n\n"
                }
                try await writer.write(ByteBuffer(string: text))
                last = page.last?.seq ?? last
                lastWrite = clock.now
                if page.count == maxPage { continue }
            }
            if ended, page.count < maxPage {
                try await writer.write(ByteBuffer(string: "event: end\ndata: {\"run\":\(runID),\"last\":\(last)}\n\n"))
                try await writer.finish(nil)
                return
            }
            if clock.now - lastWrite >= keepAlive {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                lastWrite = clock.now
            }
            try await Task.sleep(for: poll)
        }
    }

    /// One event as JSON; `data` is the stored JSON as it is.
    static func json(_ event: AgentRunEventStore.Event) -> String {
        let kind = JSONText.quoted(event.kind)
        let at = event.at.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        return #"{"seq":\#(event.seq),"at":"\#(at)","kind":\#(kind),"data":\#(event.data)}"#
    }

    private static func run(_ context: AdminRequestContext) throws -> (String, Int) {
        let workItem = context.parameters.get("work_item") ?? ""
        guard let run = context.parameters.get("run").flatMap(Int.init), run > 0 else {
            throw APIError(.badRequest, "'run' must be a run id")
        }
        return (workItem, run)
    }

    private static func number(_ text: String?, name: String) throws -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), value >= 0 else { throw APIError(.badRequest, "'\(name)' must be a whole number") }
        return value
    }
}
